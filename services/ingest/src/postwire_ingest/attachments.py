"""Which attachments postwire sends: by name and by declared type.

The name's extension is judged as Windows would open the saved file: Unicode folded to
its compatibility form (fullwidth ``．ｅｘｅ``), an NTFS stream suffix dropped
(``evil.exe::$DATA``), trailing dots and spaces dropped (``virus.exe. ``), case
ignored. Refused extensions are the Devino seed's list plus the executable, script,
installer and disk-image types that Gmail and Outlook block. The declared content type
must be a leaf type (``multipart/*`` and ``message/*`` are containers, which RFC 2046
forbids to base64-encode) and not an executable one.
"""

from __future__ import annotations

import re
import unicodedata

from postwire_common.errors import InvalidValue

# Devino's list (the seed), then what the major mailbox providers block besides.
FORBIDDEN_EXTENSIONS = frozenset(
    {
        ".adp", ".bat", ".chm", ".cmd", ".com", ".cpl", ".exe", ".hta", ".ins", ".isp", ".jar",
        ".js", ".jse", ".lib", ".lnk", ".mde", ".msc", ".msp", ".mst", ".pif", ".scr", ".sct",
        ".shb", ".sys", ".vb", ".vbe", ".vbs", ".vxd", ".wsc", ".wsf", ".wsh",
        # Gmail / Outlook: installers, disk images, PowerShell, other script hosts.
        ".ade", ".apk", ".appx", ".appxbundle", ".cab", ".diagcab", ".diagcfg", ".diagpack",
        ".dll", ".dmg", ".ex_", ".img", ".iso", ".jnlp", ".msi", ".msix", ".msixbundle",
        ".nsh", ".ps1", ".ps1xml", ".ps2", ".ps2xml", ".psc1", ".psc2", ".psd1", ".psm1",
        ".reg", ".scf", ".settingcontent-ms", ".vhd", ".vhdx", ".xll", ".xbap", ".gadget",
        ".application", ".hlp", ".mcf", ".msh", ".msh1", ".msh2", ".mshxml", ".msh1xml",
        ".msh2xml", ".pcd", ".plg", ".prf", ".prg", ".url", ".ws", ".cnt", ".crt", ".der",
        ".grp", ".library-ms", ".mda", ".mdb", ".mdt", ".mdw", ".mdz", ".ops", ".pst", ".tmp",
        ".bas", ".csh", ".ksh", ".sh", ".py", ".pyc", ".pyo", ".pl", ".rb", ".php", ".vbp",
    }
)  # fmt: skip

# Top-level types an attachment may declare (RFC 2046 discrete types, RFC 8081 font).
LEAF_TYPES = frozenset({"application", "audio", "font", "image", "model", "text", "video"})
EXECUTABLE_TYPES = frozenset(
    {
        "application/x-msdownload", "application/x-msdos-program", "application/x-ms-installer",
        "application/x-msi", "application/x-dosexec", "application/x-executable",
        "application/vnd.microsoft.portable-executable", "application/x-ms-shortcut",
        "application/java-archive", "application/x-java-jnlp-file", "application/x-sh",
        "application/x-csh", "application/x-bat", "application/hta", "application/x-iso9660-image",
        "application/x-apple-diskimage", "application/vnd.android.package-archive",
        "application/javascript", "application/x-javascript", "text/javascript",
        "application/x-powershell", "text/x-python", "text/x-shellscript",
    }
)  # fmt: skip
_MIME_TYPE = re.compile(r"([a-z0-9!#$&^_.+-]+)/([a-z0-9!#$&^_.+-]+)")


def extension(filename: str) -> str:
    """The extension Windows would give the saved file, lower case with its dot."""
    name = unicodedata.normalize("NFKC", filename)
    name = name.split(":", 1)[0]  # "evil.exe::$DATA", "evil.exe:stream"
    name = name.rstrip(". \t")
    base = re.split(r"[\\/]", name)[-1]
    return "." + base.rsplit(".", 1)[-1].lower() if "." in base else ""


def check_filename(filename: str) -> None:
    found = extension(filename)
    if found in FORBIDDEN_EXTENSIONS:
        raise InvalidValue(f"Not allowed attachement type {found}")


def content_type(filename: str, declared: str | None) -> str:
    """The declared MIME type, lower case; ``application/octet-stream`` when none."""
    kind = (declared or "application/octet-stream").strip().lower()
    match = _MIME_TYPE.fullmatch(kind)
    if match is None:
        raise InvalidValue(f"attachment {filename!r}: {declared!r} is not a MIME type")
    if match.group(1) not in LEAF_TYPES:
        raise InvalidValue(
            f"attachment {filename!r}: {kind} is not allowed; an attachment's type is one of "
            + ", ".join(f"{t}/*" for t in sorted(LEAF_TYPES))
        )
    if kind in EXECUTABLE_TYPES:
        raise InvalidValue(f"attachment {filename!r}: {kind} is an executable type")
    return kind
