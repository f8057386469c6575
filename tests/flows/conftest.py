"""The flows reuse the attribution tests' tiny registered world."""

from tests.attribution.conftest import attribution_settings, tiny_world  # noqa: F401
