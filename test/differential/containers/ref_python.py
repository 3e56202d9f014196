# Reference reader for the container oracle: Python's zipfile and tarfile. Reads container
# paths on stdin, one per line; prints for each one JSON line: the hex bytes of every member
# either module extracts (members that fail to read are skipped, the rest still count).
import json, sys, tarfile, zipfile

LIMIT = 64 * 1024 * 1024

def members(path):
    out = []
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if info.is_dir() or info.file_size > LIMIT:
                    continue
                try:
                    out.append(z.read(info).hex())
                except Exception:
                    pass
    except Exception:
        pass
    try:
        with tarfile.open(path) as t:
            for m in t.getmembers():
                if not m.isfile() or m.size > LIMIT:
                    continue
                try:
                    f = t.extractfile(m)
                    if f is not None:
                        out.append(f.read().hex())
                except Exception:
                    pass
    except Exception:
        pass
    return out

for line in sys.stdin:
    path = line.rstrip('\n')
    if path:
        print(json.dumps(members(path)), flush=True)
