"""Reference adapter: Python's email package, both policies.

Reads message paths (one per line) on stdin; for each prints one JSON line
{"path": P, "compat32": [hex...], "default": [hex...]} with the bytes of every leaf that
get_payload(decode=True) gives, base64-encoded (the caller hashes them).
"""
import base64, email, email.policy, json, sys

def leaves(data, pol):
    out = []
    try:
        msg = email.message_from_bytes(data, policy=pol)
        for part in msg.walk():
            if part.is_multipart():
                continue
            try:
                payload = part.get_payload(decode=True)
            except Exception:
                continue
            if isinstance(payload, bytes) and payload:
                out.append(base64.b64encode(payload).decode())
    except Exception as e:  # a parser crash is the parser's problem, not a file
        sys.stderr.write(f"{type(e).__name__}: {e}\n")
    return out

for line in sys.stdin:
    path = line.rstrip("\n")
    if not path:
        continue
    with open(path, "rb") as f:
        data = f.read()
    print(json.dumps({"path": path, "compat32": leaves(data, email.policy.compat32), "default": leaves(data, email.policy.default)}), flush=True)
