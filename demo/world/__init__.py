"""The demo world: real scores rendered to audio, the catalog files, and the small
stable-audio-tools model trained on them (``manage.py build_demo_world``)."""
