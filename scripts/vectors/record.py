#!/usr/bin/python3
"""Record ZooKeeper client-protocol golden vectors.

Starts a fresh standalone Apache ZooKeeper (Debian package, 3.8.0) for every
scenario, puts an in-process recording TCP proxy in front of it, drives one
scenario through the proxy (kazoo, zkCli.sh or hand-built raw frames) and
writes every frame that crossed the proxy, in forwarding order, to
<out>/<scenario>.txt (or <scenario>-N.txt when the scenario uses several
TCP connections).

Usage (must be the Debian python, which has python3-kazoo):

    /usr/bin/python3 scripts/vectors/record.py --out wire/tests/vectors
    /usr/bin/python3 scripts/vectors/record.py --out wire/tests/vectors --only watches,ping

Vector file format: see scripts/vectors/README.md.

Only stdlib + kazoo.  Everything temporary (ZooKeeper data dir, logs) lives
in a tempfile.mkdtemp() directory that is removed at the end.
"""

import argparse
import glob
import logging
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import namedtuple

import kazoo
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, ZookeeperError
from kazoo.protocol.serialization import (
    Create, GetChildren, GetData, MultiHeader, int_struct, multiheader_struct,
    read_buffer, read_string, stat_struct, write_buffer, write_string)
from kazoo.protocol.states import ZnodeStat
from kazoo.security import ACL, Id, OPEN_ACL_UNSAFE, make_digest_acl

try:
    from kazoo.version import __version__ as KAZOO_VERSION
except Exception:  # pragma: no cover
    KAZOO_VERSION = getattr(kazoo, "__version__", "2.x")

ZK_JAR = "/usr/share/java/zookeeper.jar"
ZK_CONF_DIR = "/etc/zookeeper/conf"
ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
JAVA = "/usr/bin/java"

SERVER_DESC = "Apache ZooKeeper 3.8.0 (Debian)"
KAZOO_DESC = "kazoo %s (python3-kazoo, Debian)" % KAZOO_VERSION
ZKCLI_DESC = "zkCli.sh (ZooKeeper 3.8.0 Java client, Debian)"
RAW_DESC = "raw frames built by record.py's own encoder (Python socket)"

log = logging.getLogger("record")

# ---------------------------------------------------------------------------
# Jute helpers (used for raw frames, custom kazoo requests and frame notes)
# ---------------------------------------------------------------------------


def ustr(s):
    """Jute ustring; None -> -1.  (Unlike kazoo, "" is sent as length 0.)"""
    if s is None:
        return struct.pack(">i", -1)
    b = s.encode("utf-8")
    return struct.pack(">i", len(b)) + b


def ubuf(b):
    if b is None:
        return struct.pack(">i", -1)
    return struct.pack(">i", len(b)) + b


def uvec_str(lst):
    if lst is None:
        return struct.pack(">i", -1)
    return struct.pack(">i", len(lst)) + b"".join(ustr(s) for s in lst)


def uacls(acls):
    out = struct.pack(">i", len(acls))
    for a in acls:
        out += struct.pack(">i", a.perms) + ustr(a.id.scheme) + ustr(a.id.id)
    return out


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


OPNAMES = {
    0: "notification", 1: "create", 2: "delete", 3: "exists", 4: "getData",
    5: "setData", 6: "getACL", 7: "setACL", 8: "getChildren", 9: "sync",
    11: "ping", 12: "getChildren2", 13: "check", 14: "multi", 15: "create2",
    16: "reconfig", 17: "checkWatches", 18: "removeWatches",
    19: "createContainer", 20: "deleteContainer", 21: "createTTL",
    22: "multiRead", 100: "auth", 101: "setWatches", 102: "sasl",
    103: "getEphemerals", 104: "getAllChildrenNumber", 105: "setWatches2",
    106: "addWatch", 107: "whoAmI", -10: "createSession", -11: "closeSession",
    -1: "error",
}
EVENTS = {1: "NodeCreated", 2: "NodeDeleted", 3: "NodeDataChanged",
          4: "NodeChildrenChanged"}
ERRNAMES = {
    0: "OK", -2: "RUNTIMEINCONSISTENCY", -5: "MARSHALLINGERROR",
    -6: "UNIMPLEMENTED", -8: "BADARGUMENTS", -101: "NONODE", -102: "NOAUTH",
    -103: "BADVERSION", -108: "NOCHILDRENFOREPHEMERALS", -110: "NODEEXISTS",
    -111: "NOTEMPTY", -112: "SESSIONEXPIRED", -114: "INVALIDACL",
    -115: "AUTHFAILED", -121: "NOWATCHER", -123: "RECONFIGDISABLED",
}
# ops whose request body starts with a path ustring
PATH_OPS = {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 17, 18, 19, 20, 21, 103, 104,
            106}


def _try_str(payload, off):
    try:
        n = struct.unpack_from(">i", payload, off)[0]
        if n < 0:
            return "<null>"
        if off + 4 + n > len(payload):
            return "<truncated>"
        return payload[off + 4:off + 4 + n].decode("utf-8", "replace")
    except struct.error:
        return "<truncated>"


class Annotator(object):
    """Produces the trailing '# note' for each frame of one connection."""

    def __init__(self):
        self.seen_c = False
        self.seen_s = False
        self.pending = {}  # xid -> [opcodes] (FIFO; auth reuses xid -4)

    def note(self, direction, fr):
        p = fr[4:]
        try:
            if direction == "C":
                return self._note_c(p)
            return self._note_s(p)
        except Exception as e:  # never fail the recording because of a note
            return "undecodable: %s" % e

    def _note_c(self, p):
        if not self.seen_c:
            self.seen_c = True
            pv, lz, to, sid = struct.unpack_from(">iqiq", p, 0)
            plen = struct.unpack_from(">i", p, 24)[0]
            rest = len(p) - 28 - max(plen, 0)
            ro = ("readOnly=%d" % p[-1]) if rest == 1 else "no readOnly byte"
            return ("ConnectRequest len=%d lastZxidSeen=0x%x timeOut=%d "
                    "sessionId=0x%x %s" % (len(p), lz, to, sid, ro))
        if len(p) < 8:
            return "short frame"
        xid, op = struct.unpack_from(">ii", p, 0)
        self.pending.setdefault(xid, []).append(op)
        name = OPNAMES.get(op, "unknown-opcode")
        s = "xid=%d %s(%d)" % (xid, name, op)
        if op in PATH_OPS and len(p) >= 12:
            s += " %s" % _try_str(p, 8)
        if op == 100:
            s += " scheme=%s" % _try_str(p, 12)
        if op in (14, 22):
            s += " ops=%s" % _multi_ops(p, 8)
        return s

    def _note_s(self, p):
        if not self.seen_s:
            self.seen_s = True
            pv, to, sid = struct.unpack_from(">iiq", p, 0)
            plen = struct.unpack_from(">i", p, 16)[0]
            rest = len(p) - 20 - max(plen, 0)
            ro = ("readOnly=%d" % p[-1]) if rest == 1 else "no readOnly byte"
            return ("ConnectResponse len=%d timeOut=%d sessionId=0x%x "
                    "passwdLen=%d %s" % (len(p), to, sid, plen, ro))
        xid, zxid, err = struct.unpack_from(">iqi", p, 0)
        errs = "err=%d" % err
        if err:
            errs += " %s" % ERRNAMES.get(err, "?")
        if xid == -1:
            et, st = struct.unpack_from(">ii", p, 16)
            return "notification %s state=%d %s zxid=%s" % (
                EVENTS.get(et, et), st, _try_str(p, 24), _zx(zxid))
        if xid == -2 and not self.pending.get(-2):
            return "ping reply zxid=%s %s" % (_zx(zxid), errs)
        q = self.pending.get(xid)
        op = q.pop(0) if q else None
        name = OPNAMES.get(op, "op%s" % op) if op is not None else "?"
        s = "reply xid=%d (%s) zxid=%s %s" % (xid, name, _zx(zxid), errs)
        if op in (14, 22) and err == 0 and len(p) > 16:
            s += " results=%s" % _multi_results(p, 16)
        return s


def _skip_str(p, off):
    n = struct.unpack_from(">i", p, off)[0]
    return off + 4 + max(n, 0)


def _multi_ops(p, off):
    """Sub-op opcodes (and paths) of a MultiOperationRecord."""
    out = []
    try:
        while True:
            t, done, err = struct.unpack_from(">iBi", p, off)
            off += 9
            if done:
                return "[%s]" % ", ".join(out)
            out.append("%s %s" % (OPNAMES.get(t, t), _try_str(p, off)))
            if t in (1, 15, 19, 21):
                off = _skip_str(p, off)
                off = _skip_str(p, off)
                n = struct.unpack_from(">i", p, off)[0]
                off += 4
                for _ in range(max(n, 0)):
                    off = _skip_str(p, _skip_str(p, off + 4))
                off += 4
                if t == 21:
                    off += 8
            elif t in (2, 13):
                off = _skip_str(p, off) + 4
            elif t == 5:
                off = _skip_str(p, _skip_str(p, off)) + 4
            elif t in (4, 8):
                off = _skip_str(p, off) + 1
            else:
                out.append("...")
                return "[%s]" % ", ".join(out)
    except struct.error:
        out.append("<truncated>")
        return "[%s]" % ", ".join(out)


def _multi_results(p, off):
    out = []
    try:
        while True:
            t, done, err = struct.unpack_from(">iBi", p, off)
            off += 9
            if done:
                return "[%s]" % ", ".join(out)
            if t == -1:
                e = struct.unpack_from(">i", p, off)[0]
                off += 4
                out.append("error/%d" % e)
                continue
            out.append(OPNAMES.get(t, str(t)))
            if t == 1:
                off = _skip_str(p, off)
            elif t == 15:
                off = _skip_str(p, off) + 68
            elif t == 5:
                off += 68
            elif t == 4:
                off = _skip_str(p, off) + 68
            elif t == 8:
                n = struct.unpack_from(">i", p, off)[0]
                off += 4
                for _ in range(max(n, 0)):
                    off = _skip_str(p, off)
            elif t not in (2, 13):
                out.append("...")
                return "[%s]" % ", ".join(out)
    except struct.error:
        out.append("<truncated>")
        return "[%s]" % ", ".join(out)


def _zx(z):
    return "-1" if z == -1 else "0x%x" % z


# ---------------------------------------------------------------------------
# ZooKeeper server
# ---------------------------------------------------------------------------


class ZkServer(object):
    def __init__(self, workdir, port):
        self.workdir = workdir
        self.port = port
        self.proc = None

    def start(self):
        data = os.path.join(self.workdir, "data")
        if os.path.exists(data):
            shutil.rmtree(data)
        os.makedirs(data)
        cfg = os.path.join(self.workdir, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write("tickTime=2000\n"
                    "dataDir=%s\n"
                    "clientPort=%d\n"
                    "clientPortAddress=127.0.0.1\n"
                    "4lw.commands.whitelist=*\n"
                    "admin.enableServer=false\n" % (data, self.port))
        self.logf = open(os.path.join(self.workdir, "zk.log"), "ab")
        self.proc = subprocess.Popen(
            [JAVA, "-Dzookeeper.extendedTypesEnabled=true",
             "-Dzookeeper.log.dir=%s" % self.workdir,
             "-Dzookeeper.root.logger=INFO,CONSOLE",
             "-cp", "%s:%s" % (ZK_CONF_DIR, ZK_JAR),
             "org.apache.zookeeper.server.ZooKeeperServerMain", cfg],
            stdin=subprocess.DEVNULL, stdout=self.logf,
            stderr=subprocess.STDOUT, cwd=self.workdir,
            start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("ZooKeeper exited with %s" %
                                   self.proc.returncode)
            if self._serving():
                return
            time.sleep(0.2)
        raise RuntimeError("ZooKeeper did not come up")

    def _serving(self):
        # direct to the server, never through the proxy (no 4lw in vectors)
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=1)
        except OSError:
            return False
        try:
            # "srvr" (unlike "ruok") answers "not currently serving" until
            # the server can really take sessions
            s.sendall(b"srvr")
            s.shutdown(socket.SHUT_WR)
            data = b""
            while True:
                d = s.recv(64)
                if not d:
                    break
                data += d
            return b"Mode: standalone" in data
        except OSError:
            return False
        finally:
            s.close()

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        self.logf.close()


# ---------------------------------------------------------------------------
# Recording proxy
# ---------------------------------------------------------------------------


class ProxyConn(object):
    def __init__(self, index, csock):
        self.index = index
        self.csock = csock
        self.ssock = None
        self.lock = threading.Lock()
        self.frames = []  # (direction, frame bytes incl. length prefix)
        self.leftover = {"C": b"", "S": b""}
        self.finished = {"C": threading.Event(), "S": threading.Event()}
        self.closed = False

    def done(self):
        return self.finished["C"].is_set() and self.finished["S"].is_set()

    def wait(self, timeout):
        end = time.time() + timeout
        for d in ("C", "S"):
            if not self.finished[d].wait(max(0.0, end - time.time())):
                return False
        return True

    def kill(self):
        for s in (self.csock, self.ssock):
            if s is None:
                continue
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Proxy(object):
    def __init__(self, listen_port, target_port):
        self.target = ("127.0.0.1", target_port)
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", listen_port))
        self.lsock.listen(16)
        self.port = listen_port
        self.conns = []
        self.conns_lock = threading.Lock()
        self.release = threading.Event()
        self.release.set()
        self.stopping = False
        self.threads = []
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self.accept_thread = t

    def _accept_loop(self):
        while not self.stopping:
            try:
                csock, _ = self.lsock.accept()
            except OSError:
                break
            if self.stopping:
                csock.close()
                break
            with self.conns_lock:
                conn = ProxyConn(len(self.conns), csock)
                self.conns.append(conn)
            t = threading.Thread(target=self._handle, args=(conn,),
                                 daemon=True)
            t.start()
            self.threads.append(t)

    def _handle(self, conn):
        # "hold" mode: the client connection is accepted but not forwarded
        # until release is set (used to change data while a client is
        # disconnected, so that its SetWatches produces events).
        self.release.wait()
        try:
            conn.ssock = socket.create_connection(self.target, timeout=10)
            conn.ssock.settimeout(None)
        except OSError as e:
            log.error("proxy: upstream connect failed: %s", e)
            conn.kill()
            conn.csock.close()
            conn.finished["C"].set()
            conn.finished["S"].set()
            return
        for s in (conn.csock, conn.ssock):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tc = threading.Thread(target=self._pump,
                              args=(conn, conn.csock, conn.ssock, "C"),
                              daemon=True)
        ts = threading.Thread(target=self._pump,
                              args=(conn, conn.ssock, conn.csock, "S"),
                              daemon=True)
        tc.start()
        ts.start()
        tc.join()
        ts.join()
        for s in (conn.csock, conn.ssock):
            try:
                s.close()
            except OSError:
                pass
        conn.closed = True

    def _pump(self, conn, src, dst, direction):
        buf = b""
        try:
            while True:
                try:
                    data = src.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                buf += data
                while len(buf) >= 4:
                    n = struct.unpack(">i", buf[:4])[0]
                    if n < 0 or len(buf) < 4 + n:
                        break
                    fr, buf = buf[:4 + n], buf[4 + n:]
                    # record and forward under one lock: the recorded order
                    # is the forwarding order, so a request always precedes
                    # its reply.
                    with conn.lock:
                        conn.frames.append((direction, fr))
                        try:
                            dst.sendall(fr)
                        except OSError:
                            buf = b""
                            raise EOFError()
        except EOFError:
            pass
        finally:
            conn.leftover[direction] = buf
            if buf:
                # forward unframed bytes anyway (not recorded as a frame)
                try:
                    dst.sendall(buf)
                except OSError:
                    pass
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            conn.finished[direction].set()

    def count(self):
        with self.conns_lock:
            return len(self.conns)

    def conns_since(self, start):
        with self.conns_lock:
            return list(self.conns[start:])

    def bounce(self):
        """Drop every live proxied connection (both sides)."""
        with self.conns_lock:
            live = [c for c in self.conns if not c.done()]
        for c in live:
            c.kill()
        for c in live:
            c.wait(10)

    def close(self):
        self.stopping = True
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()
        self.release.set()
        with self.conns_lock:
            conns = list(self.conns)
        for c in conns:
            c.kill()
        for t in self.threads:
            t.join(5)
        self.accept_thread.join(5)


# ---------------------------------------------------------------------------
# Raw client (for requests kazoo cannot send)
# ---------------------------------------------------------------------------

Reply = namedtuple("Reply", "xid zxid err body")


class RawClient(object):
    def __init__(self, port, timeout_ms=10000, session_id=0,
                 passwd=b"\0" * 16, last_zxid=0, read_only=False,
                 omit_read_only=False):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        body = struct.pack(">iqiq", 0, last_zxid, timeout_ms, session_id)
        body += ubuf(passwd)
        if not omit_read_only:
            body += bytes([1 if read_only else 0])
        self.sock.sendall(frame(body))
        resp = self.read_frame()
        if resp is None:
            raise EOFError("no ConnectResponse")
        self.connect_response = resp
        _, self.timeout, self.session_id = struct.unpack_from(">iiq", resp)
        self.passwd, _ = read_buffer(resp, 16)
        self.xid = 0
        self.events = []

    def read_frame(self, timeout=10):
        self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">i", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    p, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                    return p
            d = self.sock.recv(65536)
            if not d:
                return None
            self.buf += d

    def next_xid(self):
        self.xid += 1
        return self.xid

    def send(self, op, body=b"", xid=None):
        if xid is None:
            xid = self.next_xid()
        self.sock.sendall(frame(struct.pack(">ii", xid, op) + body))
        return xid

    def wait_reply(self, xid):
        while True:
            p = self.read_frame()
            if p is None:
                raise EOFError("connection closed waiting for xid %d" % xid)
            rx, zxid, err = struct.unpack_from(">iqi", p)
            if rx == -1:
                self.events.append(p[16:])
                continue
            if rx == xid:
                return Reply(rx, zxid, err, p[16:])
            raise RuntimeError("unexpected xid %d (want %d)" % (rx, xid))

    def call(self, op, body=b"", xid=None):
        xid = self.send(op, body, xid)
        return self.wait_reply(xid)

    def expect_eof(self, timeout=10):
        try:
            while True:
                p = self.read_frame(timeout)
                if p is None:
                    return True
        except (socket.timeout, OSError):
            return False

    def close_session(self):
        r = self.call(-11)
        self.expect_eof(5)
        self.sock.close()
        return r

    def close_socket(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------
# kazoo request classes for opcodes kazoo 2.8 does not implement.  They are
# submitted through the normal kazoo connection (client._call), so the xids,
# handshake and framing are still kazoo's.
# ---------------------------------------------------------------------------


def _stat(b, off):
    return ZnodeStat._make(stat_struct.unpack_from(b, off))


def _kz_acls(acls):
    b = bytearray(int_struct.pack(len(acls)))
    for a in acls:
        b.extend(int_struct.pack(a.perms) + write_string(a.id.scheme) +
                 write_string(a.id.id))
    return b


class CreateContainer(namedtuple("CreateContainer", "path data acl flags")):
    type = 19

    def serialize(self):
        return (write_string(self.path) + write_buffer(self.data) +
                _kz_acls(self.acl) + int_struct.pack(self.flags))

    @classmethod
    def deserialize(cls, b, off):
        path, off = read_string(b, off)
        return path, _stat(b, off)


class CreateTTL(namedtuple("CreateTTL", "path data acl flags ttl")):
    type = 21

    def serialize(self):
        return (write_string(self.path) + write_buffer(self.data) +
                _kz_acls(self.acl) + int_struct.pack(self.flags) +
                struct.pack(">q", self.ttl))

    @classmethod
    def deserialize(cls, b, off):
        path, off = read_string(b, off)
        return path, _stat(b, off)


class Create2Op(namedtuple("Create2Op", "path data acl flags")):
    """create2 (15) as a multi sub-op (kazoo's own Create2 has no multi
    result decoding)."""
    type = 15

    def serialize(self):
        return (write_string(self.path) + write_buffer(self.data) +
                _kz_acls(self.acl) + int_struct.pack(self.flags))


class DeleteContainer(namedtuple("DeleteContainer", "path")):
    type = 20

    def serialize(self):
        return write_buffer(self.path.encode("utf-8"))

    @classmethod
    def deserialize(cls, b, off):
        return True


class AddWatch(namedtuple("AddWatch", "path mode")):
    type = 106

    def serialize(self):
        return write_string(self.path) + int_struct.pack(self.mode)

    @classmethod
    def deserialize(cls, b, off):
        return int_struct.unpack_from(b, off)[0]


class CheckWatches(namedtuple("CheckWatches", "path wtype")):
    type = 17

    def serialize(self):
        return write_string(self.path) + int_struct.pack(self.wtype)

    @classmethod
    def deserialize(cls, b, off):
        return True


class RemoveWatches(CheckWatches):
    type = 18


class WhoAmI(namedtuple("WhoAmI", "")):
    type = 107

    # an empty namedtuple is falsy, and kazoo only completes a request
    # whose request object is truthy
    def __bool__(self):
        return True

    def serialize(self):
        return b""

    @classmethod
    def deserialize(cls, b, off):
        n = int_struct.unpack_from(b, off)[0]
        off += 4
        out = []
        for _ in range(max(n, 0)):
            scheme, off = read_string(b, off)
            user, off = read_string(b, off)
            out.append((scheme, user))
        return out


class GetEphemerals(namedtuple("GetEphemerals", "prefix")):
    type = 103

    def serialize(self):
        return write_string(self.prefix)

    @classmethod
    def deserialize(cls, b, off):
        n = int_struct.unpack_from(b, off)[0]
        off += 4
        out = []
        for _ in range(max(n, 0)):
            s, off = read_string(b, off)
            out.append(s)
        return out


class GetAllChildrenNumber(namedtuple("GetAllChildrenNumber", "path")):
    type = 104

    def serialize(self):
        return write_string(self.path)

    @classmethod
    def deserialize(cls, b, off):
        return int_struct.unpack_from(b, off)[0]


class MultiAny(namedtuple("MultiAny", "opcode operations")):
    """multi (14) / multiRead (22) with arbitrary sub-ops, full result
    decoding (types 1, 2, 4, 5, 8, 13, 15, -1)."""

    @property
    def type(self):
        return self.opcode

    def serialize(self):
        b = bytearray()
        for op in self.operations:
            b.extend(MultiHeader(op.type, False, -1).serialize())
            b.extend(op.serialize())
        b.extend(multiheader_struct.pack(-1, True, -1))
        return b

    @classmethod
    def deserialize(cls, b, off):
        results = []
        while True:
            t, done, err = multiheader_struct.unpack_from(b, off)
            off += multiheader_struct.size
            if done:
                return results
            if t == 1:
                p, off = read_string(b, off)
                results.append(("create", p))
            elif t == 15:
                p, off = read_string(b, off)
                results.append(("create2", p, _stat(b, off)))
                off += stat_struct.size
            elif t in (2, 13):
                results.append((OPNAMES[t],))
            elif t == 5:
                results.append(("setData", _stat(b, off)))
                off += stat_struct.size
            elif t == 4:
                d, off = read_buffer(b, off)
                results.append(("getData", d, _stat(b, off)))
                off += stat_struct.size
            elif t == 8:
                n = int_struct.unpack_from(b, off)[0]
                off += 4
                ch = []
                for _ in range(max(n, 0)):
                    s, off = read_string(b, off)
                    ch.append(s)
                results.append(("getChildren", ch))
            elif t == -1:
                e = int_struct.unpack_from(b, off)[0]
                off += 4
                results.append(("error", e))
            else:
                raise ValueError("unknown multi result type %d" % t)


def kz_call(client, request, timeout=10):
    ar = client.handler.async_result()
    client._call(request, ar)
    return ar.get(timeout=timeout)


def kz_expect_error(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except (ZookeeperError, KazooException) as e:
        return e
    raise AssertionError("expected an error from %r" % (fn,))


# ---------------------------------------------------------------------------
# Scenario machinery
# ---------------------------------------------------------------------------

Scenario = namedtuple("Scenario", "name client desc func")
SCENARIOS = []


def scenario(name, client, desc):
    def deco(fn):
        SCENARIOS.append(Scenario(name, client, desc, fn))
        return fn
    return deco


class Ctx(object):
    def __init__(self, zk, proxy, workdir):
        self.zk = zk
        self.proxy = proxy
        self.workdir = workdir
        self.proxy_hosts = "127.0.0.1:%d" % proxy.port
        self.direct_hosts = "127.0.0.1:%d" % zk.port
        self._clients = []
        self._procs = []

    # kazoo through the proxy (recorded)
    def kazoo(self, timeout=10.0, **kw):
        kw.setdefault("connection_retry", {"max_tries": 3, "delay": 0.2})
        c = KazooClient(hosts=self.proxy_hosts, timeout=timeout, **kw)
        c.start(timeout=20)
        self._clients.append(c)
        return c

    # kazoo directly to ZooKeeper (NOT recorded), for setup / side effects
    def helper(self):
        c = KazooClient(hosts=self.direct_hosts, timeout=10.0)
        c.start(timeout=20)
        self._clients.append(c)
        return c

    def raw(self, **kw):
        return RawClient(self.proxy.port, **kw)

    def current_conn(self):
        with self.proxy.conns_lock:
            return self.proxy.conns[-1] if self.proxy.conns else None

    def wait_quiet(self, min_frames=2, quiet=1.5, timeout=60):
        """Wait until the newest proxied connection has >= min_frames and
        no new frames for `quiet` seconds."""
        end = time.time() + timeout
        last_n, last_t = -1, time.time()
        while time.time() < end:
            c = self.current_conn()
            n = len(c.frames) if c else 0
            if n != last_n:
                last_n, last_t = n, time.time()
            elif n >= min_frames and time.time() - last_t >= quiet:
                return c
            time.sleep(0.1)
        raise RuntimeError("proxy traffic did not settle")

    def wait_for_conn(self, count, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            if self.proxy.count() >= count:
                return
            time.sleep(0.05)
        raise RuntimeError("expected connection #%d never arrived" % count)

    def zkcli(self):
        env = dict(os.environ)
        env["CLIENT_JVMFLAGS"] = ("-Dzookeeper.log.dir=%s "
                                  "-Dzookeeper.root.logger=WARN,CONSOLE"
                                  % self.workdir)
        out = open(os.path.join(self.workdir, "zkcli.out"), "ab")
        p = subprocess.Popen([ZKCLI, "-server", self.proxy_hosts],
                             stdin=subprocess.PIPE, stdout=out,
                             stderr=subprocess.STDOUT, env=env,
                             cwd=self.workdir, start_new_session=True)
        out.close()
        self._procs.append(p)
        return ZkCli(p)

    def cleanup(self):
        for c in self._clients:
            try:
                c.stop()
                c.close()
            except Exception:
                pass
        for p in self._procs:
            if p.poll() is None:
                try:
                    p.stdin.close()
                except Exception:
                    pass
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.terminate()
                    try:
                        p.wait(10)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait(5)


class ZkCli(object):
    def __init__(self, proc):
        self.proc = proc

    def cmd(self, *lines):
        for line in lines:
            self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def quit(self, timeout=30):
        self.cmd("quit")
        try:
            self.proc.stdin.close()
        except Exception:
            pass
        self.proc.wait(timeout)


# Machine-readable hints for edge-case files, written as a "# Tags:" comment.
# Key 0 = every connection of the scenario, n = only connection n.
TAGS = {
    "handshake-no-readonly": {0: ["no-readonly-byte"]},
    "session-invalid": {0: ["session-refused"]},
    "session-bad-password": {1: ["no-close-session"],
                             2: ["session-refused"]},
    "auth-failed": {0: ["auth-failed", "server-closes"]},
    "unknown-opcode": {0: ["unknown-opcode", "server-closes"]},
    "check-toplevel": {0: ["toplevel-check", "unanswered-request"]},
    "marshalling-error": {0: ["malformed-request"]},
    "reconnect": {1: ["no-close-session"]},
    "zkcli-setwatches": {1: ["no-close-session"]},
    "zkcli-setwatches2": {1: ["no-close-session"]},
}


def write_vector(path, sc, conn, idx, total):
    lines = []
    lines.append("# Scenario: %s" % sc.name)
    for d in sc.desc.strip().splitlines():
        lines.append("#   %s" % d.strip())
    tags = (TAGS.get(sc.name, {}).get(0, []) +
            TAGS.get(sc.name, {}).get(idx, []))
    if tags:
        lines.append("# Tags: %s" % ", ".join(tags))
    if total > 1:
        lines.append("# TCP connection %d of %d of this scenario." %
                     (idx, total))
    lines.append("# Server: %s, standalone, tickTime=2000, "
                 "zookeeper.extendedTypesEnabled=true," % SERVER_DESC)
    lines.append("#   fresh empty data directory for this scenario.")
    lines.append("# Client: %s" % sc.client)
    lines.append("# Recorded by scripts/vectors/record.py with an in-process "
                 "TCP proxy that splits each")
    lines.append("#   direction into frames and logs them in forwarding "
                 "order (a request always precedes its reply).")
    lines.append("# Session ids, passwords, zxids, ctime/mtime vary between "
                 "recordings.")
    lines.append("# Line format: 'C <hex>' client->server, 'S <hex>' "
                 "server->client; <hex> is the whole frame")
    lines.append("#   including its 4-byte big-endian length prefix. "
                 "Text after ' # ' is a note.")
    lines.append("")
    ann = Annotator()
    for d, fr in conn.frames:
        lines.append("%s %s # %s" % (d, fr.hex(), ann.note(d, fr)))
    for d, name in (("C", "client"), ("S", "server")):
        if conn.leftover[d]:
            lines.append("# NOTE: %d trailing unframed bytes from %s: %s" %
                         (len(conn.leftover[d]), name,
                          conn.leftover[d].hex()))
    lines.append("# end of connection")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def run_scenario(sc, args, tmproot):
    workdir = tempfile.mkdtemp(prefix="sc-%s-" % sc.name, dir=tmproot)
    zk = ZkServer(workdir, args.zk_port)
    proxy = None
    ctx = None
    try:
        zk.start()
        proxy = Proxy(args.proxy_port, args.zk_port)
        ctx = Ctx(zk, proxy, workdir)
        sc.func(ctx)
        ctx.cleanup()
        conns = proxy.conns_since(0)
        for c in conns:
            if not c.wait(20):
                log.warning("%s: connection %d did not finish; killing",
                            sc.name, c.index)
                c.kill()
                c.wait(5)
        conns = [c for c in conns if c.frames]
        if not conns:
            raise RuntimeError("no traffic recorded")
        written = []
        for i, c in enumerate(conns, 1):
            if len(conns) == 1:
                fn = "%s.txt" % sc.name
            else:
                fn = "%s-%d.txt" % (sc.name, i)
            write_vector(os.path.join(args.out, fn), sc, c, i, len(conns))
            written.append((fn, len(c.frames)))
        return written
    finally:
        if ctx is not None:
            ctx.cleanup()
        if proxy is not None:
            proxy.close()
        zk.stop()


# ---------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------

KAZOO_EXT = (KAZOO_DESC + "; opcodes kazoo lacks are sent through kazoo's "
             "connection with small request classes defined in record.py")


@scenario("handshake", KAZOO_DESC, """
kazoo connects (new session, timeout 10000 ms), then closes the session.
Opcodes: ConnectRequest/ConnectResponse, closeSession (-11).""")
def sc_handshake(ctx):
    c = ctx.kazoo()
    c.stop()


@scenario("handshake-readonly", KAZOO_DESC, """
kazoo with read_only=True: ConnectRequest readOnly byte = 1; the server is
read-write so the ConnectResponse readOnly byte is 0. Then closeSession.""")
def sc_handshake_ro(ctx):
    c = ctx.kazoo(read_only=True)
    c.stop()


@scenario("handshake-no-readonly", RAW_DESC, """
Old-style 44-byte ConnectRequest without the trailing readOnly byte; the
server answers with a 36-byte ConnectResponse without readOnly. Then a
getData / and closeSession.""")
def sc_handshake_noro(ctx):
    r = ctx.raw(omit_read_only=True, timeout_ms=30000)
    r.call(4, ustr("/") + b"\0")
    r.close_session()


@scenario("handshake-timeout-clamp", RAW_DESC, """
Two ConnectRequests on separate connections: timeOut 1000 ms (raised to the
minimum 4000 = 2*tickTime) and timeOut 100000 ms (lowered to the maximum
40000 = 20*tickTime). Each session is closed with closeSession.""")
def sc_handshake_clamp(ctx):
    r = ctx.raw(timeout_ms=1000)
    r.close_session()
    r = ctx.raw(timeout_ms=100000)
    r.close_session()


@scenario("session-invalid", RAW_DESC, """
ConnectRequest that tries to resume an unknown session (sessionId
0x0123456789abcdef, 16 zero password bytes, lastZxidSeen 0). The server
replies with the 'invalid session' ConnectResponse (timeOut 0, sessionId 0,
zero password) and closes the connection.""")
def sc_session_invalid(ctx):
    r = ctx.raw(session_id=0x0123456789abcdef)
    r.expect_eof(10)
    r.close_socket()


@scenario("session-bad-password", RAW_DESC, """
Connection 1: new session, getData /, then the socket is closed WITHOUT
closeSession. Connection 2: resume that session with a wrong password
(every byte flipped): invalid-session ConnectResponse and close.
Connection 3: resume with the correct password and lastZxidSeen from
connection 1: success (same sessionId), then closeSession.""")
def sc_session_resume(ctx):
    r = ctx.raw(timeout_ms=30000)
    rep = r.call(4, ustr("/") + b"\0")
    sid, pw = r.session_id, r.passwd
    r.close_socket()
    time.sleep(0.5)
    bad = bytes(b ^ 0xFF for b in pw)
    r2 = ctx.raw(timeout_ms=30000, session_id=sid, passwd=bad,
                 last_zxid=rep.zxid)
    r2.expect_eof(10)
    r2.close_socket()
    time.sleep(0.5)
    r3 = ctx.raw(timeout_ms=30000, session_id=sid, passwd=pw,
                 last_zxid=rep.zxid)
    r3.call(3, ustr("/zookeeper") + b"\0")
    r3.close_session()


@scenario("create-modes", KAZOO_EXT, """
create (opcode 1, kazoo default) with flags 0 PERSISTENT, 1 EPHEMERAL,
2 PERSISTENT_SEQUENTIAL, 3 EPHEMERAL_SEQUENTIAL; createContainer (19,
flags 4); createTTL (21) with flags 5 PERSISTENT_WITH_TTL and 6
PERSISTENT_SEQUENTIAL_WITH_TTL (ttl 3600000 ms); createTTL with ttl 0
(BADARGUMENTS -8); a sequential create whose path ends in '/'; create with
null data (buffer -1) and with empty data (buffer length 0), then getData of
both (null comes back as -1); getData on the ephemeral, container and TTL
nodes (ephemeralOwner = session id / 0 / 0); getChildren /;
deleteContainer (20) of the empty container -> BADARGUMENTS (-8): 3.8.0
builds the path from the whole request buffer (headers included), so a
client-sent deleteContainer always fails; closeSession deletes the
ephemerals.""")
def sc_create_modes(ctx):
    c = ctx.kazoo()
    c.create("/persistent", b"p")
    c.create("/ephemeral", b"e", ephemeral=True)
    c.create("/pseq-", b"ps", sequence=True)
    c.create("/eseq-", b"es", ephemeral=True, sequence=True)
    kz_call(c, CreateContainer("/container", b"c", OPEN_ACL_UNSAFE, 4))
    kz_call(c, CreateTTL("/ttl", b"t", OPEN_ACL_UNSAFE, 5, 3600000))
    kz_call(c, CreateTTL("/ttlseq-", b"ts", OPEN_ACL_UNSAFE, 6, 3600000))
    kz_expect_error(kz_call, c, CreateTTL("/ttlzero", b"", OPEN_ACL_UNSAFE,
                                          5, 0))
    c.create("/persistent/", b"", sequence=True)
    c.create("/nulldata", None)
    c.create("/emptydata", b"")
    c.get("/nulldata")
    c.get("/emptydata")
    c.get("/ephemeral")
    c.get("/container")
    c.get("/ttl")
    c.get_children("/")
    # 3.8.0 decodes a client deleteContainer as new String(whole request
    # buffer), i.e. including the headers, so it fails with BADARGUMENTS.
    kz_expect_error(kz_call, c, DeleteContainer("/container"))
    c.stop()


@scenario("create2", KAZOO_DESC, """
kazoo create(include_data=True) -> create2 (15) with a Create2Response
{path, stat}: persistent, ephemeral-sequential, and a NODEEXISTS error.
Then closeSession.""")
def sc_create2(ctx):
    c = ctx.kazoo()
    c.create("/c2", b"hello", include_data=True)
    c.create("/c2/seq-", b"", ephemeral=True, sequence=True,
             include_data=True)
    kz_expect_error(c.create, "/c2", b"again", include_data=True)
    c.stop()


@scenario("get-set-delete", KAZOO_DESC, """
create /gsd, getData, setData (version -1), setData (version 1), getData,
delete with version 2, getData -> NONODE (-101). Then closeSession.""")
def sc_get_set_delete(ctx):
    c = ctx.kazoo()
    c.create("/gsd", b"v0")
    c.get("/gsd")
    c.set("/gsd", b"v1")
    c.set("/gsd", b"v2-longer-value", version=1)
    c.get("/gsd")
    c.delete("/gsd", version=2)
    kz_expect_error(c.get, "/gsd")
    c.stop()


@scenario("exists", KAZOO_DESC, """
exists on an existing node (ExistsResponse = Stat), on a missing node
(err -101 NONODE, no body), exists with watch on a missing node, and on /.
Then closeSession.""")
def sc_exists(ctx):
    c = ctx.kazoo()
    c.create("/here", b"x")
    c.exists("/here")
    c.exists("/not-here")
    c.exists("/not-here-watched", watch=lambda ev: None)
    c.exists("/")
    c.stop()


@scenario("children", KAZOO_DESC, """
getChildren (8) and getChildren2 (12, kazoo include_data=True) on a node with
three children, on a leaf (empty vector), on /, on a missing node (-101), and
with watch=1. Then closeSession.""")
def sc_children(ctx):
    c = ctx.kazoo()
    c.create("/kids", b"")
    for n in ("a", "b", "c"):
        c.create("/kids/" + n, n.encode())
    c.get_children("/kids")
    c.get_children("/kids", include_data=True)
    c.get_children("/kids/a")
    c.get_children("/kids/a", include_data=True)
    c.get_children("/")
    kz_expect_error(c.get_children, "/nokids")
    kz_expect_error(c.get_children, "/nokids", include_data=True)
    c.get_children("/kids", watch=lambda ev: None)
    c.get_children("/kids", watch=lambda ev: None, include_data=True)
    c.stop()


@scenario("acl", KAZOO_DESC, """
getACL (6) of / and of a new node (world:anyone perms 31), setACL (7)
version -1 to [world:anyone ALL, digest bob ALL], getACL, setACL version 1
to [world:anyone READ|ADMIN (17), digest bob ALL], getACL (aversion 2),
setACL with a wrong aversion (BADVERSION -103), setACL with an empty
ACL list (INVALIDACL -114), create with an 'auth' ACL while unauthenticated
(INVALIDACL -114; kazoo sends the empty id as a null string), setData on the
read-only node (NOAUTH -102). Then closeSession.""")
def sc_acl(ctx):
    c = ctx.kazoo()
    c.get_acls("/")
    c.create("/acl", b"x")
    c.get_acls("/acl")
    ro = ACL(1 | 16, Id("world", "anyone"))   # READ|ADMIN
    dig = make_digest_acl("bob", "secret", all=True)
    c.set_acls("/acl", [OPEN_ACL_UNSAFE[0], dig])
    c.get_acls("/acl")
    c.set_acls("/acl", [ro, dig], version=1)
    c.get_acls("/acl")
    kz_expect_error(c.set_acls, "/acl", [ro], version=7)
    kz_expect_error(kz_call, c, _RawSetACL("/acl", [], -1))
    kz_expect_error(c.create, "/authacl", b"",
                    acl=[ACL(31, Id("auth", ""))])
    kz_expect_error(c.set, "/acl", b"denied")
    c.stop()


class _RawSetACL(namedtuple("_RawSetACL", "path acls version")):
    """setACL that allows an empty ACL list (kazoo would send the default)."""
    type = 7

    def serialize(self):
        return (write_string(self.path) + _kz_acls(self.acls) +
                int_struct.pack(self.version))

    @classmethod
    def deserialize(cls, b, off):
        return _stat(b, off)


@scenario("auth", KAZOO_EXT, """
add_auth digest 'bob:secret' after the handshake (auth, opcode 100, xid -4,
reply zxid 0), whoAmI (107, no request body) showing ip and digest ids,
create /secret with ACL [digest bob ALL, world READ], getACL as the owner
(full digest id), create with an 'auth' scheme ACL (expanded to the digest
id), getACL of it, setData/getData on /secret. Then closeSession.""")
def sc_auth(ctx):
    c = ctx.kazoo()
    kz_call(c, WhoAmI())
    c.add_auth("digest", "bob:secret")
    kz_call(c, WhoAmI())
    acl = [make_digest_acl("bob", "secret", all=True),
           ACL(1, Id("world", "anyone"))]
    c.create("/secret", b"s", acl=acl)
    c.get_acls("/secret")
    c.create("/authacl", b"a", acl=[ACL(31, Id("auth", ""))])
    c.get_acls("/authacl")
    c.set("/secret", b"s2")
    c.get("/secret")
    c.stop()


@scenario("auth-at-connect", KAZOO_EXT, """
KazooClient(auth_data=[('digest','alice:pw1'), ('digest','bob:pw2')]): kazoo
sends the auth packets right after the ConnectResponse, one at a time, each
waiting for its xid -4 reply. Then whoAmI and closeSession.""")
def sc_auth_at_connect(ctx):
    c = ctx.kazoo(auth_data=[("digest", "alice:pw1"), ("digest", "bob:pw2")])
    kz_call(c, WhoAmI())
    c.stop()


@scenario("noauth", KAZOO_DESC, """
A helper session (not recorded) creates /secret with ACL [digest bob ALL,
world READ] and /locked with ACL [digest bob ALL]. The recorded,
unauthenticated kazoo session: getData /secret (ok), getACL /secret (digest
id masked as 'bob:x' because the caller lacks ADMIN), setData /secret (NOAUTH
-102), getData /locked (NOAUTH -102), getACL /locked (NOAUTH -102), create
/locked/child (NOAUTH -102), delete /secret (ok: DELETE is checked on the
parent /). Then closeSession.""")
def sc_noauth(ctx):
    h = ctx.helper()
    h.add_auth("digest", "bob:secret")
    dig = make_digest_acl("bob", "secret", all=True)
    h.create("/secret", b"s", acl=[dig, ACL(1, Id("world", "anyone"))])
    h.create("/locked", b"l", acl=[dig])
    h.stop()
    c = ctx.kazoo()
    c.get("/secret")
    c.get_acls("/secret")
    kz_expect_error(c.set, "/secret", b"x")
    kz_expect_error(c.get, "/locked")
    kz_expect_error(c.get_acls, "/locked")
    kz_expect_error(c.create, "/locked/child", b"")
    c.delete("/secret")
    c.stop()


@scenario("auth-failed", RAW_DESC, """
auth packet (xid -4) with an unknown scheme 'nosuchscheme': the server
replies err -115 AUTHFAILED (zxid 0) and closes the connection.""")
def sc_auth_failed(ctx):
    r = ctx.raw()
    r.send(100, struct.pack(">i", 0) + ustr("nosuchscheme") + ubuf(b"x:y"),
           xid=-4)
    r.wait_reply(-4)
    r.expect_eof(10)
    r.close_socket()


@scenario("multi-success", KAZOO_DESC, """
create /mx, then a kazoo transaction (multi, opcode 14): create /m, create
/m/seq- (sequential), set_data /m (version 0), check /m (version 1), delete
/mx; all succeed with one zxid. Result types 1, 1, 5, 13, 2. getData /m,
then closeSession.""")
def sc_multi_success(ctx):
    c = ctx.kazoo()
    c.create("/mx", b"")
    t = c.transaction()
    t.create("/m", b"multi")
    t.create("/m/seq-", b"", sequence=True)
    t.set_data("/m", b"multi2", version=0)
    t.check("/m", 1)
    t.delete("/mx")
    res = t.commit()
    assert not any(isinstance(r, Exception) for r in res), res
    c.get("/m")
    c.stop()


@scenario("multi-failure", KAZOO_DESC, """
kazoo transactions (multi 14) that fail: [create /f, check /base version 5
(BADVERSION), set_data /base] -> results -1/0, -1/-103, -1/-2; then
[delete /missing (NONODE), create /f2] -> -1/-101, -1/-2; then [create /base
(NODEEXISTS)] -> -1/-110. Header err is 0 each time; nothing is applied
(getChildren / shows it). Then closeSession.""")
def sc_multi_failure(ctx):
    c = ctx.kazoo()
    c.create("/base", b"b")
    t = c.transaction()
    t.create("/f", b"")
    t.check("/base", 5)
    t.set_data("/base", b"nope")
    res = t.commit()
    assert any(isinstance(r, Exception) for r in res), res
    t = c.transaction()
    t.delete("/missing")
    t.create("/f2", b"")
    t.commit()
    t = c.transaction()
    t.create("/base", b"")
    t.commit()
    c.get_children("/")
    c.stop()


@scenario("multi-create-types", KAZOO_EXT, """
multi (14) whose sub-ops are create (1), create2 (15), createContainer (19),
createTTL (21, ttl 60000) and setData (5). Observed on 3.8.0: the results
are type 1 (path only) for BOTH create and create2, type 15 (path + Stat)
for createContainer and createTTL, and type 5 for setData. Then
closeSession.""")
def sc_multi_create_types(ctx):
    c = ctx.kazoo()
    ops = [Create("/mc-create", b"1", OPEN_ACL_UNSAFE, 0),
           Create2Op("/mc-create2", b"15", OPEN_ACL_UNSAFE, 0),
           _MultiCreateContainer("/mc-container", b"19", OPEN_ACL_UNSAFE, 4),
           _MultiCreateTTL("/mc-ttl", b"21", OPEN_ACL_UNSAFE, 5, 60000),
           _SetDataOp("/mc-create", b"one", -1)]
    kz_call(c, MultiAny(14, ops))
    c.stop()


class _MultiCreateContainer(CreateContainer):
    pass


class _MultiCreateTTL(CreateTTL):
    pass


class _SetDataOp(namedtuple("_SetDataOp", "path data version")):
    type = 5

    def serialize(self):
        return (write_string(self.path) + write_buffer(self.data) +
                int_struct.pack(self.version))


@scenario("multiread", KAZOO_EXT, """
multiRead (22) with getData /mr, getChildren /mr, getData /mr/missing
(result -1/-101, the rest still run), getChildren /mr/a (empty). Header err
0, header zxid = last zxid (reads use none). Then closeSession.""")
def sc_multiread(ctx):
    c = ctx.kazoo()
    c.create("/mr", b"read-me")
    c.create("/mr/a", b"")
    c.create("/mr/b", b"")
    ops = [GetData("/mr", None), GetChildren("/mr", None),
           GetData("/mr/missing", None), GetChildren("/mr/a", None)]
    kz_call(c, MultiAny(22, ops))
    c.stop()


@scenario("sync", KAZOO_DESC, """
sync (9) on / and on /s (SyncResponse echoes the path), and on a missing
path (sync does not check existence). Then closeSession.""")
def sc_sync(ctx):
    c = ctx.kazoo()
    c.create("/s", b"")
    c.sync("/")
    c.sync("/s")
    c.sync("/does-not-exist")
    c.stop()


@scenario("ping", KAZOO_DESC, """
kazoo with session timeout 4000 ms idles for ~4 s; kazoo pings (xid -2,
opcode 11, no body) every read_timeout/2 (~1.3 s); the server replies with
xid -2 and the current zxid. A getData in between, then closeSession.""")
def sc_ping(ctx):
    c = ctx.kazoo(timeout=4.0)
    time.sleep(2.5)
    c.get("/")
    time.sleep(2.5)
    c.stop()


@scenario("watches", KAZOO_DESC, """
Standard one-shot watches and notifications (xid -1, state 3).
Self-triggered (notification arrives BEFORE the reply to our own write):
getData watch + setData -> NodeDataChanged; exists watch on a missing node +
create -> NodeCreated; getChildren watch + create child ->
NodeChildrenChanged; getData watch + delete -> NodeDeleted (plus
NodeChildrenChanged for the parent watched by getChildren2).
Triggered by an unrecorded helper session (notification arrives on its
own): NodeDataChanged and NodeDeleted. Then closeSession.""")
def sc_watches(ctx):
    c = ctx.kazoo()
    got = []
    ev_lock = threading.Condition()

    def w(ev):
        with ev_lock:
            got.append(ev)
            ev_lock.notify_all()

    def wait_events(n):
        with ev_lock:
            end = time.time() + 10
            while len(got) < n and time.time() < end:
                ev_lock.wait(0.2)
        assert len(got) >= n, got

    c.create("/w", b"0")
    c.get("/w", watch=w)
    c.set("/w", b"1")                       # NodeDataChanged /w
    wait_events(1)
    c.exists("/w/new", watch=w)
    c.create("/w/new", b"")                 # NodeCreated /w/new
    wait_events(2)
    c.get_children("/w", watch=w)
    c.create("/w/kid", b"")                 # NodeChildrenChanged /w
    wait_events(3)
    c.get("/w/kid", watch=w)
    c.get_children("/w", watch=w, include_data=True)
    c.delete("/w/kid")                      # NodeDeleted + ChildrenChanged
    wait_events(5)
    # remote triggers
    c.get("/w", watch=w)
    c.exists("/w/new", watch=w)
    h = ctx.helper()
    h.set("/w", b"remote")                  # NodeDataChanged /w
    wait_events(6)
    h.delete("/w/new")                      # NodeDeleted /w/new
    wait_events(7)
    h.stop()
    c.get("/w")
    c.stop()


@scenario("addwatch", KAZOO_EXT, """
addWatch (106): mode 0 PERSISTENT on /p and mode 1 PERSISTENT_RECURSIVE on
/r; the reply body is ErrorResponse {err=0} (4 bytes). Then changes that fire
them without removing them: setData /p twice (NodeDataChanged twice), create
/p/c (NodeChildrenChanged /p; no event for /p/c), create /r/a (NodeCreated),
setData /r/a, create /r/a/b (NodeCreated), delete /r/a/b (NodeDeleted; no
NodeChildrenChanged for recursive watches), delete /p/c, setData /p.
addWatch with mode 2 -> MARSHALLINGERROR (-5), connection stays open.
Then closeSession.""")
def sc_addwatch(ctx):
    c = ctx.kazoo()
    c.create("/p", b"")
    c.create("/r", b"")
    kz_call(c, AddWatch("/p", 0))
    kz_call(c, AddWatch("/r", 1))
    c.set("/p", b"1")
    c.set("/p", b"2")
    c.create("/p/c", b"")
    c.create("/r/a", b"")
    c.set("/r/a", b"x")
    c.create("/r/a/b", b"")
    c.delete("/r/a/b")
    c.delete("/p/c")
    c.set("/p", b"3")
    kz_expect_error(kz_call, c, AddWatch("/p", 2))
    c.get("/p")
    c.stop()


@scenario("remove-watches", RAW_DESC, """
checkWatches (17) and removeWatches (18), raw client (kazoo 2.8 cannot
decode -121). With a data watch on /rw (getData watch=1) and a child watch
(getChildren watch=1): checkWatches Data(2) -> 0, checkWatches Children(1)
-> 0, checkWatches /none Any(3) -> -121 NOWATCHER, removeWatches
Children(1) -> 0, removeWatches Children(1) again -> -121, removeWatches
Any(3) -> 0 (removes the data watch), setData /rw fires nothing.
addWatch persistent (0) on /rw, removeWatches Persistent(4) -> observed -5
MARSHALLINGERROR on 3.8.0 (types 4/5 are not accepted there); addWatch
recursive (1), removeWatches PersistentRecursive(5) -> -5 as well;
removeWatches Data(2) -> 0 (removes the persistent and recursive entries
from the data-watch table); setData /rw then fires nothing. Then
closeSession.""")
def sc_remove_watches(ctx):
    r = ctx.raw()
    acl = uacls(OPEN_ACL_UNSAFE)
    r.call(1, ustr("/rw") + ubuf(b"") + acl + struct.pack(">i", 0))
    r.call(4, ustr("/rw") + b"\1")
    r.call(8, ustr("/rw") + b"\1")
    wt = lambda p, t: ustr(p) + struct.pack(">i", t)
    r.call(17, wt("/rw", 2))
    r.call(17, wt("/rw", 1))
    r.call(17, wt("/none", 3))
    r.call(18, wt("/rw", 1))
    r.call(18, wt("/rw", 1))
    r.call(18, wt("/rw", 3))
    r.call(5, ustr("/rw") + ubuf(b"no-event") + struct.pack(">i", -1))
    r.call(106, wt("/rw", 0))
    r.call(18, wt("/rw", 4))
    r.call(106, wt("/rw", 1))
    r.call(18, wt("/rw", 5))
    r.call(18, wt("/rw", 2))
    r.call(5, ustr("/rw") + ubuf(b"still-no-event") + struct.pack(">i", -1))
    assert not r.events, r.events
    r.close_session()


@scenario("reconfig-disabled", RAW_DESC, """
reconfig (16) against the standalone server (reconfigEnabled=false):
err -123 RECONFIGDISABLED (kazoo 2.8 cannot decode -123, hence raw). Then
closeSession.""")
def sc_reconfig(ctx):
    r = ctx.raw()
    r.call(16, ustr("server.9=127.0.0.1:22198:22199") + ustr(None) +
           ustr(None) + struct.pack(">q", -1))
    r.close_session()


@scenario("errors", KAZOO_DESC, """
Error replies (header only, no body): getData missing -> NONODE -101;
create with missing parent -> -101; create existing -> NODEEXISTS -110;
setData wrong version -> BADVERSION -103; delete wrong version -> -103;
delete node with children -> NOTEMPTY -111; create under an ephemeral ->
NOCHILDRENFOREPHEMERALS -108; delete /zookeeper -> BADARGUMENTS -8;
delete missing -> -101; setData missing -> -101. Failed writes still
consume a zxid. Then closeSession.""")
def sc_errors(ctx):
    c = ctx.kazoo()
    c.create("/e", b"")
    c.create("/e/child", b"")
    c.create("/eph", b"", ephemeral=True)
    kz_expect_error(c.get, "/missing")
    kz_expect_error(c.create, "/missing/child", b"")
    kz_expect_error(c.create, "/e", b"")
    kz_expect_error(c.set, "/e", b"x", version=3)
    kz_expect_error(c.delete, "/e/child", version=9)
    kz_expect_error(c.delete, "/e")
    kz_expect_error(c.create, "/eph/child", b"")
    kz_expect_error(c.delete, "/zookeeper")
    kz_expect_error(c.delete, "/missing")
    kz_expect_error(c.set, "/missing", b"x")
    c.get("/e")
    c.stop()


@scenario("ephemerals", KAZOO_EXT, """
getEphemerals (103) with prefix '/' (all this session's ephemerals), prefix
'/eph/a' (plain string prefix match), and an empty prefix (kazoo sends it as
a null string, -1); getAllChildrenNumber (104) of /, /eph and a leaf, and of
a missing node (NONODE -101). Then closeSession.""")
def sc_ephemerals(ctx):
    c = ctx.kazoo()
    c.create("/eph", b"")
    c.create("/eph/a1", b"", ephemeral=True)
    c.create("/eph/a2", b"", ephemeral=True)
    c.create("/eph/b1", b"", ephemeral=True)
    c.create("/top-eph", b"", ephemeral=True)
    c.create("/eph/persist", b"")
    kz_call(c, GetEphemerals("/"))
    kz_call(c, GetEphemerals("/eph/a"))
    kz_call(c, GetEphemerals(""))
    kz_call(c, GetAllChildrenNumber("/"))
    kz_call(c, GetAllChildrenNumber("/eph"))
    kz_call(c, GetAllChildrenNumber("/eph/a1"))
    kz_expect_error(kz_call, c, GetAllChildrenNumber("/nope"))
    c.stop()


@scenario("unknown-opcode", RAW_DESC, """
A request with unknown opcode 999 (xid 1, no body): the server replies
err -6 UNIMPLEMENTED with zxid -1 and closes the connection.""")
def sc_unknown_opcode(ctx):
    r = ctx.raw()
    r.call(999)
    r.expect_eof(10)
    r.close_socket()


@scenario("check-toplevel", RAW_DESC, """
check (13) sent as a top-level request (only meaningful inside multi).
Observed on 3.8.0: NO reply at all for xid 1 and the connection stays
open (yet a zxid is consumed: the next reply's zxid is 1 higher than
after createSession). The recorder waits 3 s, then sends getData / (xid 2),
which is answered normally, then closeSession. (Newer servers answer -6
UNIMPLEMENTED and close; a client must not rely on either.)""")
def sc_check_toplevel(ctx):
    r = ctx.raw()
    r.send(13, ustr("/") + struct.pack(">i", -1))
    try:
        p = r.read_frame(3)
        raise AssertionError("unexpected reply to top-level check: %r" % p)
    except socket.timeout:
        pass
    r.call(4, ustr("/") + b"\0")
    r.close_session()


@scenario("marshalling-error", RAW_DESC, """
getData whose body is truncated (path length 100, only 2 bytes follow):
err -5 MARSHALLINGERROR, connection stays open; then a multi with an
unsupported sub-op type (getData inside multi 14) -> -5; then a valid
getData / and closeSession.""")
def sc_marshalling(ctx):
    r = ctx.raw()
    r.call(4, struct.pack(">i", 100) + b"/x")
    mh = struct.pack(">i?i", 4, False, -1)
    r.call(14, mh + ustr("/") + b"\0" + struct.pack(">i?i", -1, True, -1))
    r.call(4, ustr("/") + b"\0")
    r.close_session()


@scenario("setwatches-raw", RAW_DESC, """
A helper session creates /sw/{d1,d2,c1,c2}. The raw client (C-client style,
xid -8) sends setWatches (101) with relativeZxid = the zxid of the last
setup write: data [/sw/d1 (unchanged: registered), /sw/gone (missing:
NodeDeleted)], exist [/sw/d2 (exists: NodeCreated), /sw/absent (missing:
registered)], child [/sw/c1 (registered), /sw/gone2 (NodeDeleted)]. Events
go out with zxid -1 before the reply (which echoes xid -8). Then
setWatches2 (105) with a persistent watch on /sw/c2 and a recursive watch on
/sw/d1, both registered silently. Then setData /sw/d1 (NodeDataChanged),
create /sw/absent (NodeCreated), create /sw/c1/x (NodeChildrenChanged
/sw/c1), create /sw/c2/y (NodeChildrenChanged /sw/c2) on this connection.
Then closeSession.""")
def sc_setwatches_raw(ctx):
    h = ctx.helper()
    for p in ("/sw", "/sw/d1", "/sw/d2", "/sw/c1", "/sw/c2"):
        h.create(p, b"")
    h.stop()
    r = ctx.raw()
    rel = r.call(3, ustr("/sw/c2") + b"\0").zxid
    body = (struct.pack(">q", rel) + uvec_str(["/sw/d1", "/sw/gone"]) +
            uvec_str(["/sw/d2", "/sw/absent"]) +
            uvec_str(["/sw/c1", "/sw/gone2"]))
    r.call(101, body, xid=-8)
    body2 = (struct.pack(">q", rel) + uvec_str([]) + uvec_str([]) +
             uvec_str([]) + uvec_str(["/sw/c2"]) + uvec_str(["/sw/d1"]))
    r.call(105, body2, xid=-8)
    acl = uacls(OPEN_ACL_UNSAFE)
    r.call(5, ustr("/sw/d1") + ubuf(b"changed") + struct.pack(">i", -1))
    r.call(1, ustr("/sw/absent") + ubuf(b"") + acl + struct.pack(">i", 0))
    r.call(1, ustr("/sw/c1/x") + ubuf(b"") + acl + struct.pack(">i", 0))
    r.call(1, ustr("/sw/c2/y") + ubuf(b"") + acl + struct.pack(">i", 0))
    r.close_session()


@scenario("reconnect", KAZOO_DESC, """
kazoo session; creates /rc and an ephemeral, then the proxy drops the TCP
connection (connection 1 ends without closeSession). kazoo reconnects
(connection 2) with the same sessionId and password and lastZxidSeen set;
the ConnectResponse echoes the session. kazoo does NOT send setWatches even
though it had a watch. getData /rc, then closeSession.""")
def sc_reconnect(ctx):
    c = ctx.kazoo(timeout=10.0)
    c.create("/rc", b"")
    c.create("/rc/eph", b"", ephemeral=True)
    c.get("/rc", watch=lambda ev: None)
    ctx.proxy.bounce()
    ctx.wait_for_conn(2)
    ctx.wait_quiet(min_frames=2, quiet=1.0)
    c.get("/rc")
    c.stop()


@scenario("zkcli-basic", ZKCLI_DESC, """
zkCli.sh -server <proxy> with commands on stdin: create /j data, get -s /j,
set /j data2, stat /j, ls -w / (getChildren2 with watch), create /j/k,
create /j2 (fires the ls -w watch: NodeChildrenChanged /), ls -s /j,
getAcl /j, create -e, create -s, create -c (19), create -t 10000 (21),
getAllChildrenNumber /, getEphemerals, whoami, sync /, get /missing
(NONODE), create /j again (NODEEXISTS), delete /j (NOTEMPTY), set -v 9 /j
(BADVERSION), addWatch /j (default PERSISTENT_RECURSIVE), delete /j/k
(NodeDeleted via the recursive watch), deleteall /j (getChildren walk then
one multi of deletes), quit (closeSession). Shows the Java client's 45-byte
ConnectRequest, its xids (1, 2, ...) and opcodes.""")
def sc_zkcli_basic(ctx):
    z = ctx.zkcli()
    z.cmd("create /j data",
          "get -s /j",
          "set /j data2",
          "stat /j",
          "ls -w /",
          "create /j/k kk",
          "create /j2 x",
          "ls -s /j",
          "getAcl /j",
          "create -e /j/eph e",
          "create -s /j/seq- s",
          "create -c /jc c",
          "create -t 10000 /jt t",
          "getAllChildrenNumber /",
          "getEphemerals",
          "whoami",
          "sync /",
          "get /missing",
          "create /j again",
          "delete /j",
          "set -v 9 /j nope",
          "addWatch /j",
          "delete /j/k",
          "deleteall /j")
    ctx.wait_quiet(min_frames=4, quiet=2.0)
    z.quit()


def _zkcli_bounce(ctx, z, changes):
    """Wait for zkCli to go quiet, hold+drop the proxy connection, apply
    `changes` with an unrecorded helper, release so the Java client
    reconnects and restores its watches."""
    ctx.wait_quiet(min_frames=4, quiet=2.0)
    n = ctx.proxy.count()
    ctx.proxy.release.clear()
    ctx.proxy.bounce()
    h = ctx.helper()
    changes(h)
    h.stop()
    time.sleep(1.0)
    ctx.proxy.release.set()
    ctx.wait_for_conn(n + 1)
    ctx.wait_quiet(min_frames=2, quiet=2.0)


@scenario("zkcli-setwatches", ZKCLI_DESC, """
setWatches (101) from the real Java client. Connection 1: zkCli sets data
watches (get -w /sw/d1, /sw/d2, /sw/d3), exist watches (stat -w /sw/m1,
/sw/m2) and child watches (ls -w /sw/c1, /sw/c2), after addauth digest
u:p (typed before the session was established, so the Java client sends
the auth packet twice: once from primeConnection, once queued). The proxy then drops the connection and, while the client is
disconnected, a helper changes /sw/d2, deletes /sw/d3, creates /sw/m2 and
/sw/c2/x. Connection 2: the Java client resumes the session (sessionId,
password, lastZxidSeen) and sends auth and setWatches with normal xids; the
server answers with zxid -1 events for the changed paths, then the reply.
Then set /sw/d1 fires the restored watch; quit (closeSession).""")
def sc_zkcli_setwatches(ctx):
    h = ctx.helper()
    for p in ("/sw", "/sw/d1", "/sw/d2", "/sw/d3", "/sw/c1", "/sw/c2"):
        h.create(p, b"v")
    h.stop()
    z = ctx.zkcli()
    z.cmd("addauth digest u:p",
          "get -w /sw/d1", "get -w /sw/d2", "get -w /sw/d3",
          "stat -w /sw/m1", "stat -w /sw/m2",
          "ls -w /sw/c1", "ls -w /sw/c2")

    def changes(h):
        h.set("/sw/d2", b"changed")
        h.delete("/sw/d3")
        h.create("/sw/m2", b"")
        h.create("/sw/c2/x", b"")
    _zkcli_bounce(ctx, z, changes)
    z.cmd("set /sw/d1 after-reconnect")
    ctx.wait_quiet(min_frames=4, quiet=2.0)
    z.quit()


@scenario("zkcli-setwatches2", ZKCLI_DESC, """
setWatches2 (105) from the real Java client. Connection 1: zkCli adds a
persistent-recursive watch (addWatch /pw, default mode), a persistent watch
(addWatch -m PERSISTENT /pp) and a data watch (get -w /pd); setData /pw/x
fires the recursive watch. The proxy drops the connection, a helper
changes /pd, and the client reconnects (connection 2) sending setWatches2
with all five lists (persistent watches are restored silently, the changed
data watch yields a zxid -1 NodeDataChanged). Then create /pw/y and set /pp
fire the restored persistent watches; quit.""")
def sc_zkcli_setwatches2(ctx):
    h = ctx.helper()
    for p in ("/pw", "/pw/x", "/pp", "/pd"):
        h.create(p, b"v")
    h.stop()
    z = ctx.zkcli()
    z.cmd("addWatch /pw", "addWatch -m PERSISTENT /pp", "get -w /pd",
          "set /pw/x x2")

    def changes(h):
        h.set("/pd", b"changed")
    _zkcli_bounce(ctx, z, changes)
    z.cmd("create /pw/y y", "set /pp p2")
    ctx.wait_quiet(min_frames=4, quiet=2.0)
    z.quit()


# ---------------------------------------------------------------------------


def port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        s.listen(1)
        return True
    except OSError:
        return False
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True,
                    help="output directory (e.g. wire/tests/vectors)")
    ap.add_argument("--zk-port", type=int, default=22101)
    ap.add_argument("--proxy-port", type=int, default=22102)
    ap.add_argument("--only", default="",
                    help="comma-separated scenario names")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--keep-going", action="store_true",
                    help="continue after a failing scenario")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--scenario-timeout", type=int, default=180,
                    help="seconds before a scenario is aborted")
    args = ap.parse_args()

    def on_alarm(signum, frame):
        raise TimeoutError("scenario timed out")

    def on_term(signum, frame):
        sys.exit(128 + signum)   # run finally blocks: stop ZooKeeper etc.
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not args.verbose:
        logging.getLogger("kazoo").setLevel(logging.ERROR)

    if args.list:
        for sc in SCENARIOS:
            print(sc.name)
        return 0
    for p in (args.zk_port, args.proxy_port):
        if not (22100 <= p <= 22199):
            print("ports must be in 22100-22199", file=sys.stderr)
            return 2
        if not port_free(p):
            print("port %d is busy" % p, file=sys.stderr)
            return 2
    only = [s for s in args.only.split(",") if s]
    names = {sc.name for sc in SCENARIOS}
    for o in only:
        if o not in names:
            print("unknown scenario %s" % o, file=sys.stderr)
            return 2
    os.makedirs(args.out, exist_ok=True)
    tmproot = tempfile.mkdtemp(prefix="zoo-vectors-")
    failures = []
    try:
        for sc in SCENARIOS:
            if only and sc.name not in only:
                continue
            # remove stale files of this scenario (name.txt / name-N.txt)
            for old in ([os.path.join(args.out, sc.name + ".txt")] +
                        glob.glob(os.path.join(args.out,
                                               sc.name + "-[0-9]*.txt"))):
                if os.path.exists(old):
                    os.remove(old)
            t0 = time.time()
            try:
                signal.alarm(args.scenario_timeout)
                try:
                    written = run_scenario(sc, args, tmproot)
                finally:
                    signal.alarm(0)
                print("%-26s %5.1fs  %s" % (
                    sc.name, time.time() - t0,
                    ", ".join("%s (%d frames)" % w for w in written)))
            except Exception:
                failures.append(sc.name)
                print("%-26s FAILED" % sc.name)
                traceback.print_exc()
                if not args.keep_going:
                    break
            sys.stdout.flush()
    finally:
        shutil.rmtree(tmproot, ignore_errors=True)
    if failures:
        print("failed scenarios: %s" % ", ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
