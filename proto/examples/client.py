#!/usr/bin/env python3
"""A complete mpctl client in Python's standard library: what `mpctl` does, in thirty lines.

    python3 client.py run echo hello      # submit, stream the output, exit with the task's code
"""
import base64, json, os, socket, sys


class Mpctl:
    def __init__(self, path=None):
        path = path or os.environ.get("MPCTL_SOCKET") or os.path.join(
            os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/mpctl-{os.getuid()}",
            "mpctl" if os.environ.get("XDG_RUNTIME_DIR") else "", "mpctld.sock")
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.file, self.next_id = self.sock.makefile("rwb"), 0

    def call(self, method, on_notification=None, **params):
        """Sends one request; notifications before its answer go to on_notification(method, params)."""
        self.next_id += 1
        line = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        self.file.write(json.dumps(line).encode() + b"\n")
        self.file.flush()
        while True:
            msg = json.loads(self.file.readline())
            if "id" not in msg:
                if on_notification:
                    on_notification(msg["method"], msg["params"])
            elif msg["id"] == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{msg['error']['data']['error']}: {msg['error']['message']}")
                return msg["result"]

    def run(self, argv):
        task = self.call("task.submit", argv=argv, cwd=os.getcwd(), env=dict(os.environ))
        def output(method, p):
            (sys.stdout if p["stream"] == "stdout" else sys.stderr).buffer.write(base64.b64decode(p["data"]))
        final = self.call("task.logs", output, id=task["id"], stream="both", follow=True)["task"]
        return 0 if final["state"] == "succeeded" else (final["exit_code"] or 125)


if __name__ == "__main__" and sys.argv[1:2] == ["run"]:
    sys.exit(Mpctl().run(sys.argv[2:]))
