#!/usr/bin/env python3
"""Runs one shell script inside an rsp test guest through its command agent.

    guestctl.py SOCKET [--timeout SECS] [--connect-timeout SECS] SCRIPT

SOCKET is the host end (a QEMU `-chardev socket`) of the guest's virtio-serial port "rsp.cmd";
SCRIPT is shell text run by the guest's busybox sh (see guest-init.sh for the protocol). The
script's output (stdout and stderr merged) is copied to stdout as it arrives, and this program
exits with the script's exit status; 124 when the timeout expires first, 125 when the agent cannot
be reached or the protocol breaks.
"""

import argparse
import base64
import os
import re
import secrets
import socket
import sys
import time

DONE = re.compile(rb"\n@@RSP-GUEST-DONE ([0-9a-f]+) ([0-9]+)\n")
# Longest possible trailer; output is held back by this much until the trailer is ruled out.
HOLD = len(b"\n@@RSP-GUEST-DONE ") + 32 + 1 + 3 + 1


def connect(path: str, deadline: float) -> socket.socket:
    last = None
    while time.monotonic() < deadline:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError as e:  # QEMU not listening yet, or another client is connected
            last = e
            s.close()
            time.sleep(0.2)
    raise ConnectionError(f"cannot connect to {path}: {last}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("socket")
    ap.add_argument("script")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--connect-timeout", type=float, default=30.0)
    args = ap.parse_args()

    start = time.monotonic()
    try:
        s = connect(args.socket, start + args.connect_timeout)
    except ConnectionError as e:
        print(f"guestctl: {e}", file=sys.stderr)
        return 125
    req_id = secrets.token_hex(8)
    # The guest kills the script after the timeout; the host waits a little longer for the trailer.
    limit = max(1, int(args.timeout))
    s.sendall(f"{req_id} {limit} ".encode() + base64.b64encode(args.script.encode()) + b"\n")
    deadline = time.monotonic() + limit + 10
    buf = b""
    out = sys.stdout.buffer
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            out.write(buf)
            out.flush()
            print(f"\nguestctl: timed out after {args.timeout:.0f}s", file=sys.stderr)
            return 124
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            out.write(buf)
            out.flush()
            print("\nguestctl: the guest agent closed the connection", file=sys.stderr)
            return 125
        buf += chunk
        for m in DONE.finditer(buf):
            if m.group(1).decode() == req_id:
                out.write(buf[: m.start()])
                out.flush()
                return int(m.group(2))
        if len(buf) > HOLD:
            out.write(buf[:-HOLD])
            out.flush()
            buf = buf[-HOLD:]


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        os._exit(1)
