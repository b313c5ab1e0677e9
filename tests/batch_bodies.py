"""Batch bodies for tests: multipart forms, zips and tars, well made or crafted to attack."""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Iterable

BOUNDARY = "batch-boundary"
FORM = f"multipart/form-data; boundary={BOUNDARY}"
ZIP = "application/zip"
TAR = "application/x-tar"

NamedBytes = tuple[str, bytes]


def form_body(parts: Iterable[tuple[str, str | None, bytes]], end: bool = True) -> bytes:
    """A multipart body (type FORM) of parts (field name, filename or None for a plain
    field, bytes); without `end`, cut short before the closing boundary."""
    body = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += data + b"\r\n"
    return body + (f"--{BOUNDARY}--\r\n".encode() if end else b"")


def images_form(images: Iterable[NamedBytes]) -> bytes:
    return form_body(("data", name, data) for name, data in images)


def zip_body(entries: Iterable[NamedBytes], **info_fields) -> bytes:
    """A zip of `entries`; `info_fields` are set on each entry's ZipInfo (compress_type,
    external_attr, extra...)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name)
            for field, value in info_fields.items():
                setattr(info, field, value)
            archive.writestr(info, data)
    return out.getvalue()


def tar_body(
    members: Iterable[tarfile.TarInfo | NamedBytes], tar_format: int = tarfile.PAX_FORMAT
) -> bytes:
    """A tar of members: (name, bytes) for a file, or a TarInfo without data."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tar_format) as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                archive.addfile(info, io.BytesIO(member[1]))
    return out.getvalue()


def special_member(name: str, kind: bytes, **fields) -> tarfile.TarInfo:
    """A tar member of another type than a file: a link, a device, a directory..."""
    info = tarfile.TarInfo(name)
    info.type = kind
    for field, value in fields.items():
        setattr(info, field, value)
    return info


def pax_member(records: dict[str, str]) -> tarfile.TarInfo:
    """An empty member whose pax header carries `records` as given."""
    info = tarfile.TarInfo("p.png")
    info.pax_headers = records
    return info


def lying_zip_bomb(inflated: int, declared: int = 100) -> bytes:
    """One deflated entry of `inflated` zero bytes whose headers declare `declared` bytes."""
    body = bytearray(zip_body([("bomb.png", bytes(inflated))], compress_type=zipfile.ZIP_DEFLATED))
    size = declared.to_bytes(4, "little")
    body[22:26] = size  # the local header's uncompressed size
    central = body.rindex(b"PK\x01\x02")
    body[central + 24 : central + 28] = size  # the central directory's
    return bytes(body)


def encrypted_zip() -> bytes:
    """A zip whose one entry is flagged encrypted (zipfile cannot write one)."""
    body = bytearray(zip_body([("e.png", b"x")]))
    body[6] |= 0x1  # the local header's flags
    body[body.rindex(b"PK\x01\x02") + 8] |= 0x1  # the central directory's
    return bytes(body)
