"""Asks a server a four-letter word on 127.0.0.1.

Usage: four_letter.py PORT [WORD]   prints the answer (WORD defaults to srvr);
prints nothing if the server does not answer.
"""

import socket
import sys


def ask(port, word="srvr", timeout=1.0):
    """The server's answer, or None if it does not answer."""
    try:
        with socket.create_connection(("127.0.0.1", int(port)), timeout=timeout) as s:
            s.sendall(word.encode())
            out = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                out += chunk
    except OSError:
        return None
    return out.decode(errors="replace")


def mode(port):
    """The `Mode:` line of srvr, or None while the server does not serve."""
    for line in (ask(port) or "").splitlines():
        if line.startswith("Mode: "):
            return line[len("Mode: "):]
    return None


if __name__ == "__main__":
    answer = ask(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "srvr", timeout=2.0)
    if answer:
        print(answer, end="")
