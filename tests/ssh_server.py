"""A real SSH server on 127.0.0.1 for the tests: SFTP only (what DVC's SSH remote
uses), public-key login, files served from one folder. It runs as its own process
so a test can stop it, or have it die in the middle of a transfer.

    python tests/ssh_server.py ROOT HOST_KEY AUTHORIZED_KEYS [--port N] [--die-after-bytes N]

Prints the port once it listens, then serves until killed. `SSHServer` starts and
stops it from a test.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncssh


class SSHServer:
    """The server in a child process, with a client key it accepts and one it refuses."""

    def __init__(self, root: Path, keys: Path):
        self.root = root
        keys.mkdir(parents=True, exist_ok=True)
        self.host_key = keys / "host_key"
        self.client_key = keys / "client_key"
        self.stranger_key = keys / "stranger_key"  # a valid key the server does not know
        for path in (self.host_key, self.client_key, self.stranger_key):
            asyncssh.generate_private_key("ssh-ed25519").write_private_key(path)
        self.authorized_keys = keys / "authorized_keys"
        asyncssh.read_private_key(self.client_key).write_public_key(self.authorized_keys)
        self.port = 0
        self.process: subprocess.Popen | None = None

    def start(self, die_after_bytes: int | None = None) -> SSHServer:
        """Listens on the port it had before, if any, so the remote's URL stays valid."""
        args = [sys.executable, __file__, str(self.root), str(self.host_key), str(self.authorized_keys)]
        args += ["--port", str(self.port)]
        if die_after_bytes is not None:
            args += ["--die-after-bytes", str(die_after_bytes)]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"the SSH server did not start (exit status {self.process.wait()})")
        self.port = int(line)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait()
            self.process.stdout.close()


def sftp_server(root: str, die_after_bytes: int | None):
    received = 0

    class Server(asyncssh.SFTPServer):
        def __init__(self, chan):
            super().__init__(chan, chroot=root)

        def write(self, file_obj, offset, data):
            nonlocal received
            received += len(data)
            if die_after_bytes is not None and received > die_after_bytes:
                # As a crashed server or a cut link: no reply, no clean close.
                os.kill(os.getpid(), signal.SIGKILL)
            return super().write(file_obj, offset, data)

    return Server


async def serve(args: argparse.Namespace) -> None:
    listener = await asyncssh.listen(
        "127.0.0.1",
        args.port,
        server_host_keys=[args.host_key],
        authorized_client_keys=args.authorized_keys,
        sftp_factory=sftp_server(args.root, args.die_after_bytes),
        allow_scp=False,
        reuse_address=True,  # restarted on the same port at once, as after a crash
    )
    print(listener.get_port(), flush=True)
    await listener.wait_closed()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("host_key")
    parser.add_argument("authorized_keys")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--die-after-bytes", type=int)
    args = parser.parse_args()
    asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
