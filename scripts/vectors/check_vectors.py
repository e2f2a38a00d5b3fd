#!/usr/bin/env python3
"""Independent sanity checker for the golden vector files.

    python3 scripts/vectors/check_vectors.py wire/tests/vectors

Stdlib only; shares no code with record.py.  For every *.txt file it checks:

* line syntax ('C <hex>' / 'S <hex>', optional ' # note', '#' comments,
  blank lines), lowercase even-length hex;
* the 4-byte big-endian length prefix equals the payload length;
* the first C frame is a ConnectRequest (44 or 45 bytes with a 16-byte
  password) and comes before any S frame; the first S frame is a
  ConnectResponse (36 or 37 bytes);
* every later S frame has a ReplyHeader; xid -1 is a notification whose
  WatcherEvent decodes exactly, xid -2 answers an outstanding ping, xid -4
  an outstanding auth, and every other xid answers an outstanding request
  in FIFO order (a request that is overtaken must never be answered later;
  overtaking itself is a warning, seen for 3.8.0's dropped top-level check);
* when err == 0 the reply body decodes exactly (no missing/extra bytes) for
  every opcode it knows; when err != 0 there is no body;
* request bodies of known opcodes decode exactly (mismatches are reported
  as warnings: some scenarios send malformed requests on purpose).

Prints, per file, the list of (xid, opcode, err) for replies and
notifications.  Exit status 1 if any error was found.
"""

import glob
import os
import re
import struct
import sys

LINE_RE = re.compile(r"^([CS]) ([0-9a-f]+)(?: # .*)?$")

OPS = {
    1: "create", 2: "delete", 3: "exists", 4: "getData", 5: "setData",
    6: "getACL", 7: "setACL", 8: "getChildren", 9: "sync", 11: "ping",
    12: "getChildren2", 13: "check", 14: "multi", 15: "create2",
    16: "reconfig", 17: "checkWatches", 18: "removeWatches",
    19: "createContainer", 20: "deleteContainer", 21: "createTTL",
    22: "multiRead", 100: "auth", 101: "setWatches", 103: "getEphemerals",
    104: "getAllChildrenNumber", 105: "setWatches2", 106: "addWatch",
    107: "whoAmI", -11: "closeSession",
}


class DecodeError(Exception):
    pass


class Reader(object):
    def __init__(self, data):
        self.d = data
        self.o = 0

    def _take(self, n):
        if self.o + n > len(self.d):
            raise DecodeError("need %d bytes at offset %d, have %d" %
                              (n, self.o, len(self.d) - self.o))
        b = self.d[self.o:self.o + n]
        self.o += n
        return b

    def int(self):
        return struct.unpack(">i", self._take(4))[0]

    def long(self):
        return struct.unpack(">q", self._take(8))[0]

    def bool(self):
        return self._take(1)[0]

    def buf(self):
        n = self.int()
        if n == -1:
            return None
        if n < 0:
            raise DecodeError("negative buffer length %d" % n)
        return self._take(n)

    def str(self):
        b = self.buf()
        if b is None:
            return None
        return b.decode("utf-8")

    def vec(self, fn):
        n = self.int()
        if n < 0:
            return None
        return [fn() for _ in range(n)]

    def stat(self):
        return self._take(68)

    def acl(self):
        return (self.int(), self.str(), self.str())

    def end(self):
        if self.o != len(self.d):
            raise DecodeError("%d trailing bytes" % (len(self.d) - self.o))


def dec_create_req(r, op):
    r.str()
    r.buf()
    r.vec(r.acl)
    r.int()
    if op == 21:
        r.long()


def dec_multi_req(r):
    while True:
        t, done, _ = r.int(), r.bool(), r.int()
        if done:
            return
        if t in (1, 15, 19, 21):
            dec_create_req(r, t)
        elif t in (2, 13):
            r.str()
            r.int()
        elif t == 5:
            r.str()
            r.buf()
            r.int()
        elif t in (4, 8):
            r.str()
            r.bool()
        else:
            raise DecodeError("unknown multi sub-op %d" % t)


def decode_request(op, body):
    r = Reader(body)
    if op in (1, 15, 19, 21):
        dec_create_req(r, op)
    elif op == 2:
        r.str(); r.int()
    elif op in (3, 4, 8, 12):
        r.str(); r.bool()
    elif op == 5:
        r.str(); r.buf(); r.int()
    elif op in (6, 9, 103, 104):
        r.str()
    elif op == 7:
        r.str(); r.vec(r.acl); r.int()
    elif op in (11, 107, -11):
        pass
    elif op in (14, 22):
        dec_multi_req(r)
    elif op == 13:
        r.str(); r.int()
    elif op == 16:
        r.str(); r.str(); r.str(); r.long()
    elif op in (17, 18, 106):
        r.str(); r.int()
    elif op == 20:
        r.buf()
    elif op == 100:
        r.int(); r.str(); r.buf()
    elif op == 101:
        r.long()
        for _ in range(3):
            r.vec(r.str)
    elif op == 105:
        r.long()
        for _ in range(5):
            r.vec(r.str)
    else:
        return "unknown opcode %d (body not checked)" % op
    r.end()
    return None


def dec_multi_resp(r):
    out = []
    while True:
        t, done, err = r.int(), r.bool(), r.int()
        if done:
            return out
        if t == -1:
            e = r.int()
            if e != err:
                raise DecodeError("multi error result: header err %d != "
                                  "body err %d" % (err, e))
            out.append("err%d" % e)
            continue
        out.append(OPS.get(t, str(t)))
        if t == 1:
            r.str()
        elif t == 15:
            r.str(); r.stat()
        elif t in (2, 13):
            pass
        elif t == 5:
            r.stat()
        elif t == 4:
            r.buf(); r.stat()
        elif t == 8:
            r.vec(r.str)
        else:
            raise DecodeError("unknown multi result type %d" % t)


def decode_response(op, body):
    r = Reader(body)
    extra = None
    if op == 1 or op == 9:
        r.str()
    elif op in (15, 19, 21):
        r.str(); r.stat()
    elif op in (2, 11, 17, 18, 100, 101, 105, -11, 20):
        pass
    elif op in (3, 5, 7):
        r.stat()
    elif op in (4, 16):
        r.buf(); r.stat()
    elif op == 6:
        r.vec(r.acl); r.stat()
    elif op in (8, 103):
        r.vec(r.str)
    elif op == 12:
        r.vec(r.str); r.stat()
    elif op in (14, 22):
        extra = dec_multi_resp(r)
    elif op in (104, 106):
        r.int()
    elif op == 107:
        r.vec(lambda: (r.str(), r.str()))
    else:
        raise DecodeError("no response decoder for opcode %r" % op)
    r.end()
    return extra


def check_file(path):
    errors, warnings, summary = [], [], []
    frames = []
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return ["not UTF-8: %s" % e], [], []
    for ln, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip() or line.startswith("#"):
            continue
        m = LINE_RE.match(line)
        if not m:
            errors.append("line %d: bad syntax: %r" % (ln, line[:80]))
            continue
        hx = m.group(2)
        if len(hx) % 2:
            errors.append("line %d: odd hex length" % ln)
            continue
        fr = bytes.fromhex(hx)
        if len(fr) < 4:
            errors.append("line %d: frame shorter than 4 bytes" % ln)
            continue
        n = struct.unpack(">i", fr[:4])[0]
        if n != len(fr) - 4:
            errors.append("line %d: length prefix %d but payload %d" %
                          (ln, n, len(fr) - 4))
            continue
        frames.append((ln, m.group(1), fr[4:]))

    seen_c = seen_s = False
    pending = []   # [(xid, op, line)] outstanding normal requests, in order
    skipped = {}   # xid -> line of requests overtaken by a later reply
    pings = []
    auths = []
    for ln, d, p in frames:
        if d == "C":
            if not seen_c:
                seen_c = True
                try:
                    r = Reader(p)
                    r.int(); r.long(); r.int(); r.long()
                    pw = r.buf()
                    if pw is None or len(pw) != 16:
                        warnings.append("line %d: passwd not 16 bytes" % ln)
                    if len(p) - r.o not in (0, 1):
                        raise DecodeError("bad ConnectRequest tail")
                    summary.append("connect-req(%d)" % len(p))
                except DecodeError as e:
                    errors.append("line %d: ConnectRequest: %s" % (ln, e))
                continue
            if len(p) < 8:
                warnings.append("line %d: request shorter than header" % ln)
                continue
            xid, op = struct.unpack_from(">ii", p)
            w = decode_request_safe(op, p[8:])
            if w:
                warnings.append("line %d: xid %d op %d: %s" % (ln, xid, op, w))
            if op == 11:
                pings.append((xid, ln))
            elif op == 100:
                auths.append((xid, ln))
            else:
                pending.append((xid, op, ln))
            continue
        # server frame
        if not seen_s:
            if not seen_c:
                errors.append("line %d: server frame before ConnectRequest"
                              % ln)
            seen_s = True
            try:
                r = Reader(p)
                r.int(); to = r.int(); r.long()
                pw = r.buf()
                if len(p) - r.o not in (0, 1):
                    raise DecodeError("bad ConnectResponse tail")
                summary.append("connect-resp(%d,to=%d)" % (len(p), to))
            except DecodeError as e:
                errors.append("line %d: ConnectResponse: %s" % (ln, e))
            continue
        if len(p) < 16:
            errors.append("line %d: reply shorter than ReplyHeader" % ln)
            continue
        xid, zxid, err = struct.unpack_from(">iqi", p)
        body = p[16:]
        if xid == -1:
            try:
                r = Reader(body)
                et, st, path_ = r.int(), r.int(), r.str()
                r.end()
                if et not in (1, 2, 3, 4) or st != 3:
                    warnings.append("line %d: odd event type/state %d/%d" %
                                    (ln, et, st))
                summary.append(("notif", et, path_))
            except DecodeError as e:
                errors.append("line %d: notification: %s" % (ln, e))
            continue
        if xid == -2:
            if not pings:
                errors.append("line %d: ping reply without ping" % ln)
            else:
                pings.pop(0)
            op = 11
        elif xid == -4 and auths:
            auths.pop(0)
            op = 100
        else:
            idx = next((i for i, q in enumerate(pending) if q[0] == xid),
                       None)
            if idx is None and xid in skipped:
                errors.append("line %d: reply xid %d arrives after a later "
                              "request was already answered" % (ln, xid))
                continue
            if idx is None:
                errors.append("line %d: reply xid %d matches no preceding "
                              "request" % (ln, xid))
                continue
            # An overtaken request is only acceptable if it is never
            # answered at all (3.8.0 silently drops a top-level check).
            for q in pending[:idx]:
                skipped[q[0]] = q[2]
                warnings.append("line %d: reply xid %d overtakes xid %d "
                                "(line %d)" % (ln, xid, q[0], q[2]))
            op = pending[idx][1]
            pending = pending[idx + 1:]
        extra = None
        if err == 0:
            try:
                extra = decode_response(op, body)
            except DecodeError as e:
                errors.append("line %d: reply xid %d op %d: %s" %
                              (ln, xid, op, e))
        elif body:
            errors.append("line %d: error reply with %d body bytes" %
                          (ln, len(body)))
        entry = (xid, op, err)
        summary.append(entry if extra is None else entry + (extra,))
    if not seen_c or not seen_s:
        errors.append("missing ConnectRequest or ConnectResponse")
    for xid, ln in sorted(skipped.items()):
        warnings.append("xid %d (line %d) never answered" % (xid, ln))
    for xid, op, ln in pending:
        warnings.append("xid %d op %d (line %d) never answered" %
                        (xid, op, ln))
    return errors, warnings, summary


def decode_request_safe(op, body):
    try:
        return decode_request(op, body)
    except (DecodeError, UnicodeDecodeError) as e:
        return "request body does not decode: %s" % e


def main(argv):
    d = argv[1] if len(argv) > 1 else "wire/tests/vectors"
    files = sorted(glob.glob(os.path.join(d, "*.txt")))
    if not files:
        print("no vector files in %s" % d)
        return 1
    bad = 0
    for f in files:
        errors, warnings, summary = check_file(f)
        status = "OK" if not errors else "FAIL"
        print("%s %s" % (status, os.path.basename(f)))
        items = []
        for s in summary:
            if isinstance(s, str):
                items.append(s)
            elif s[0] == "notif":
                items.append("notif(%d %s)" % (s[1], s[2]))
            else:
                t = "(%d,%s,%d)" % (s[0], OPS.get(s[1], s[1]), s[2])
                if len(s) > 3:
                    t += "%s" % s[3]
                items.append(t)
        print("    " + " ".join(items))
        for w in warnings:
            print("    warning: %s" % w)
        for e in errors:
            print("    ERROR: %s" % e)
        if errors:
            bad += 1
    print("%d files, %d with errors" % (len(files), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
