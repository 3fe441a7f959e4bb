"""What an uploaded file is, from its first bytes (the `filetype` library's signatures): the name a user
gave it says nothing (a program renamed `bill.pdf` is still a program). Accepted are documents, images,
sound and video a complaint's evidence is made of; programs are refused by name, anything else as an
unaccepted type. Plain text has no signature: it is accepted when it decodes as UTF-8 or GB 18030 and
holds no control characters (a script starting with "#!" is a program)."""
import filetype

from ..errors import InvalidData

# media type -> the extension a download of it gets (the stored name keeps what the user called it)
ACCEPTED = {
    "application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp",
    "image/tiff": "tif", "image/bmp": "bmp", "image/heic": "heic", "image/avif": "avif",
    "audio/mpeg": "mp3", "audio/mp4": "m4a", "audio/ogg": "ogg", "audio/x-wav": "wav", "audio/amr": "amr",
    "audio/aac": "aac", "audio/x-flac": "flac", "video/3gpp": "3gp", "video/mp4": "mp4", "video/quicktime": "mov",
    "video/x-m4v": "m4v", "video/webm": "webm",
    "application/msword": "doc", "application/vnd.ms-excel": "xls", "application/rtf": "rtf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.oasis.opendocument.text": "odt", "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "text/plain": "txt",
}
PROGRAMS = {"application/x-msdownload", "application/x-executable", "application/x-mach-binary", "application/wasm",
            "application/x-shockwave-flash", "application/x-google-chrome-extension", "application/x-deb",
            "application/x-rpm", "application/vnd.ms-cab-compressed"}
TEXT_ENCODINGS = ("utf-8", "gb18030")
ALLOWED_CONTROLS = {"\t", "\n", "\r", "\f"}


def media_type(content: bytes) -> str:
    """The accepted media type of `content`, else InvalidData (code evidence_program or evidence_type)."""
    kind = filetype.guess(content)
    found = kind.mime if kind else _text_or_none(content)
    if found in PROGRAMS or found == "text/x-script" or content[:4] in (b"\x7fELF", b"\xcf\xfa\xed\xfe"):
        raise InvalidData("the file is a program, not a document", code="evidence_program",
                          fields={"file": "a program, not a document"})
    if found not in ACCEPTED:
        err = InvalidData(f"files of type {found or 'unknown'} are not accepted", code="evidence_type",
                          fields={"file": f"type {found or 'unknown'} is not accepted"})
        err.details = {"media_type": found or "unknown"}
        raise err
    return found


def _text_or_none(content: bytes):
    for encoding in TEXT_ENCODINGS:
        try:
            text = content.decode(encoding)
        except UnicodeDecodeError:
            continue
        if any(ch < " " and ch not in ALLOWED_CONTROLS for ch in text) or "\x7f" in text:
            return None
        return "text/x-script" if text.startswith("#!") else "text/plain"
    return None


# Other names a type's files go by; a file handed out under any other extension gets its type's added
# (`invoice.bat` that is plain text goes out as `invoice.bat.txt`: no double-click runs it).
ALSO_CALLED = {"image/jpeg": {"jpeg", "jpe"}, "image/tiff": {"tiff"}, "text/plain": {"text", "log", "csv", "md"},
               "audio/mp4": {"mp4"}, "video/quicktime": {"qt"}, "application/msword": {"dot"}}
UNSAFE_IN_NAMES = set('<>:"|?*/\\')


def extension(media: str) -> str:
    return ACCEPTED.get(media, "bin")


def safe_download_name(name: str, media: str) -> str:
    """`name` with characters no file system takes removed and, unless its extension is one of `media`'s,
    the extension of `media` added."""
    name = "".join(ch for ch in name if ch not in UNSAFE_IN_NAMES).strip(" .") or "file"
    stem, dot, ext = name.rpartition(".")
    if dot and stem and ext.lower() in {extension(media)} | ALSO_CALLED.get(media, set()):
        return name
    return f"{name}.{extension(media)}"
