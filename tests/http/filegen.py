"""Sample files for the attachment tests (test_files.py), all made here in
Python (zipfile, tarfile, gzip, zlib) or with bsdtar (7z): small valid
documents and images, archives with chosen entries (traversal, absolute,
symlink), bombs, polyglots, executables, and EICAR. Nothing is read from the
network; clamav-testfiles' samples are read from their Debian package.
"""

import io
import os
import stat
import struct
import subprocess
import tarfile
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

# The EICAR test string (68 bytes): harmless, and every scanner's test signature.
EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*")
CLAMAV_TESTFILES = Path("/usr/share/clamav-testfiles")


# --- documents and images ------------------------------------------------------------

def png(width=4, height=3, seed=0):
    """A valid RGB PNG of width x height pixels."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    rows = b"".join(b"\0" + bytes((x * 40 + y * 7 + seed) & 0xFF for x in range(width * 3))
                    for y in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def gif():
    """A valid 1x1 GIF89a."""
    return (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
            b"!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


def pdf(text="Hello"):
    """A valid one-page PDF (with a correct xref table) saying text."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            b" /Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def text_log(lines=50, marker=""):
    """A plain-text log file (ASCII)."""
    return "".join(f"2026-12-02T10:{i % 60:02d}:00Z INFO worker-{i % 7} job {i} done {marker}\n"
                   for i in range(lines)).encode()


def csv_text(rows=20):
    return ("id,name,amount\n" + "".join(f"{i},Customer {i},{i * 17}.50\n"
                                        for i in range(rows))).encode()


def docx():
    """A minimal Word document: a zip whose first entry is [Content_Types].xml."""
    ct = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
          '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
          '<Default Extension="rels" ContentType="application/'
          'vnd.openxmlformats-package.relationships+xml"/>'
          '<Default Extension="xml" ContentType="application/xml"/>'
          '<Override PartName="/word/document.xml" ContentType="application/'
          'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')
    rels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/officeDocument" Target="word/document.xml"/></Relationships>')
    doc = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
           '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
           '<w:body><w:p><w:r><w:t>Hello</w:t></w:r></w:p></w:body></w:document>')
    return zip_of([("[Content_Types].xml", ct.encode()), ("_rels/.rels", rels.encode()),
                   ("word/document.xml", doc.encode())])


def elf():
    """A real ELF executable (the system's true(1))."""
    for p in ("/usr/bin/true", "/bin/true"):
        if os.path.exists(p):
            return Path(p).read_bytes()
    raise AssertionError("no /usr/bin/true")


def mz():
    """A small Windows PE executable: MZ header, PE signature, COFF and
    optional header, one section (harmless: it is never run)."""
    dos = bytearray(64)
    dos[0:2] = b"MZ"
    dos[0x3C:0x40] = struct.pack("<I", 64)
    coff = struct.pack("<HHIIIHH", 0x14C, 1, 0, 0, 0, 224, 0x0102)
    opt = bytearray(224)
    opt[0:2] = struct.pack("<H", 0x10B)                  # PE32
    opt[16:20] = struct.pack("<I", 0x1000)               # entry point
    opt[28:32] = struct.pack("<I", 0x400000)             # image base
    opt[32:40] = struct.pack("<II", 0x1000, 0x200)       # section / file alignment
    opt[56:60] = struct.pack("<I", 0x2000)               # size of image
    opt[60:64] = struct.pack("<I", 0x200)                # size of headers
    opt[68:70] = struct.pack("<H", 2)                    # subsystem: GUI
    opt[92:96] = struct.pack("<I", 16)                   # data directories
    section = struct.pack("<8sIIIIIIHHI", b".text", 0x1000, 0x1000, 0x200, 0x200, 0, 0, 0, 0,
                          0x60000020)
    head = bytes(dos) + b"PE\0\0" + coff + bytes(opt) + section
    return head + bytes(0x200 - len(head)) + b"\xc3" + bytes(0x1FF)


# --- archives --------------------------------------------------------------------------

def zip_of(entries, compress=zipfile.ZIP_DEFLATED):
    """A zip of entries: (name, bytes) pairs, or (name, bytes, "symlink")
    for a symbolic link whose target is bytes. Names are kept exactly
    (zipfile would keep '../' and a leading '/' in a ZipInfo)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compress) as z:
        for e in entries:
            name, data = e[0], e[1]
            info = zipfile.ZipInfo(name, date_time=(2026, 12, 2, 10, 0, 0))
            info.compress_type = compress
            if len(e) > 2 and e[2] == "symlink":
                info.create_system = 3  # Unix: external_attr holds the mode
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            else:
                info.create_system = 3
                info.external_attr = (stat.S_IFREG | 0o644) << 16
            z.writestr(info, data)
    out = buf.getvalue()
    return out


def raw_name_zip(name, data):
    """A one-entry stored zip with name written byte for byte (zipfile
    itself would rewrite some names)."""
    name = name.encode() if isinstance(name, str) else name
    crc = zlib.crc32(data)
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, crc, len(data), len(data),
                        len(name), 0) + name + data
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, crc, len(data),
                          len(data), len(name), 0, 0, 0, 0, 0, 0) + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local), 0)
    return local + central + end


def tar_gz_of(entries):
    """A gzip-compressed tar of entries: (name, bytes), or (name, target,
    "symlink"), (name, target, "hardlink")."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            name, data = e[0], e[1]
            info = tarfile.TarInfo(name)
            info.mtime = int(time.time())
            info.mode = 0o644
            kind = e[2] if len(e) > 2 else None
            if kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = data if isinstance(data, str) else data.decode()
                t.addfile(info)
            elif kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = data if isinstance(data, str) else data.decode()
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def seven_zip_of(entries):
    """A 7z archive of (name, bytes) entries (plain relative names), by bsdtar."""
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "src"
        src.mkdir()
        for name, data in entries:
            p = src / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        out = Path(d) / "out.7z"
        # The names one by one: "." would add "./name" entries (and "./" itself).
        subprocess.run(["bsdtar", "--format", "7zip", "-cf", str(out), "-C", str(src),
                        *[name for name, _ in entries]],
                       check=True, capture_output=True, timeout=30)
        return out.read_bytes()


def zip_bomb(unpacked=16 * 1024 * 1024):
    """A zip of one text entry of unpacked bytes that compress ~1000:1."""
    return zip_of([("zeros.txt", b"0" * unpacked)])


def nested_zip(depth, inner=None):
    """A zip in a zip ... depth archives deep (1: a plain zip), a text file innermost."""
    data = zip_of([("note.txt", inner if inner is not None else b"innermost note\n")])
    for level in range(depth - 1):
        data = zip_of([(f"level{level + 2}.zip", data)])
    return data


def gif_zip_polyglot():
    """A GIF with a zip appended: still a GIF to libmagic, a zip to libarchive."""
    return gif() + zip_of([("hidden.txt", b"hidden behind the image\n")])


def pdf_zip_polyglot():
    """A PDF that is also a zip (appended after %%EOF)."""
    return pdf("polyglot") + zip_of([("hidden.txt", b"hidden behind the document\n")])


def clamav_sample(name):
    return (CLAMAV_TESTFILES / name).read_bytes()
