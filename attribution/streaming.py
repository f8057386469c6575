"""Serving a stored audio file over HTTP with byte ranges (RFC 9110, section 14).

Browsers' ``<audio>`` elements ask for ranges to seek and to learn the length; a plain
200 with the whole file also plays, but cannot be seeked in some browsers. One range per
request (``bytes=start-end``, ``bytes=start-`` or ``bytes=-suffix``); anything else gets
the whole file, an unsatisfiable range gets 416.
"""

import mimetypes
import re
from pathlib import PurePath

from django.db.models.fields.files import FieldFile
from django.http import FileResponse, Http404, HttpRequest, HttpResponse

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def ranged_file_response(request: HttpRequest, stored: FieldFile, *, filename: str) -> HttpResponse:
    """The file, or the one byte range the request asks for (206)."""
    content_type = mimetypes.guess_type(PurePath(stored.name).name)[0] or "application/octet-stream"
    try:
        size = stored.size
    except (FileNotFoundError, ValueError) as exc:  # no file stored, or it was removed
        raise Http404("The audio file is missing.") from exc
    match = _RANGE.match(request.headers.get("Range", "").strip())
    if match is None or match.group(1) == match.group(2) == "":
        response = FileResponse(stored.open("rb"), content_type=content_type)
        response["Accept-Ranges"] = "bytes"
        response["Content-Disposition"] = f'inline; filename="{filename}"'
        return response
    first, last = match.groups()
    if first == "":  # the last N bytes
        start, end = max(size - int(last), 0), size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    with stored.open("rb") as handle:
        handle.seek(start)
        data = handle.read(end - start + 1)
    response = HttpResponse(data, status=206, content_type=content_type)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response
