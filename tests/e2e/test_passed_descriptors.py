#!/usr/bin/env python3
"""Descriptors passed with SCM_RIGHTS for stdin_fd: a connection keeps at most 16 waiting for the requests
that claim them. One passed beyond that used to be closed without a word, and more than 8 in one message were
cut by the kernel (the daemon's control buffer held 8): the request that needed them then failed with a
count that did not match what the client sent, or took another request's descriptor."""
import os, sys, unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_daemon import Connection, Daemon  # noqa: E402


def read(path):
    with open(path, "rb") as f:
        return f.read()


class PassedDescriptorsTest(unittest.TestCase):
    def setUp(self):
        self.daemon = Daemon()
        self.conn = Connection(self.daemon.socket)
        self.pipes = []

    def tearDown(self):
        self.conn.close()
        for fd in self.pipes:
            os.close(fd)
        self.daemon.stop()

    def pipe(self, data):
        """A pipe holding DATA and closed for writing: its read end is a stdin to pass."""
        r, w = os.pipe()
        os.write(w, data)
        os.close(w)
        self.pipes.append(r)
        return r

    def outputs(self, ids):
        done = self.conn.result("task.wait", {"ids": ids, "timeout": 120})
        self.assertEqual(done["pending"], [])
        statuses = done["tasks"]
        self.assertEqual([s["state"] for s in statuses], ["succeeded"] * len(ids), statuses)
        return [read(s["stdout_path"]) for s in statuses]

    def test_a_17th_waiting_descriptor_is_refused_by_the_next_claim_not_dropped_silently(self):
        spare = self.pipe(b"x")
        for _ in range(17):
            self.conn.send(b"\n", [spare])  # a blank line carries them: nothing claims them yet
        reply = self.conn.call("task.submit", {"argv": ["cat"], "cwd": self.daemon.dir, "stdin_fd": True})
        self.assertEqual(reply["error"]["code"], -32602, reply)
        message = reply["error"]["message"]
        self.assertIn("params.stdin_fd: 1 descriptor(s) passed", message)
        self.assertIn("closed unclaimed", message)
        self.assertIn("at most 16", message)
        self.assertEqual(self.conn.result("task.list")["tasks"], [])
        # The waiting ones were closed with it: the connection starts afresh, and a request that brings its
        # own descriptor gets that one, not one left from before.
        task = self.conn.call("task.submit", {"argv": ["cat"], "cwd": self.daemon.dir, "stdin_fd": True},
                              fds=[self.pipe(b"mine\n")])["result"]
        self.assertEqual(self.outputs([task["id"]]), [b"mine\n"])

    def test_ten_descriptors_in_one_message_all_arrive_in_order(self):
        fds = [self.pipe(b"%d\n" % i) for i in range(10)]
        params = {"defaults": {"argv": ["cat"], "cwd": self.daemon.dir, "stdin_fd": True}, "tasks": [{}] * 10}
        reply = self.conn.call("task.submit_batch", params, fds=fds)
        self.assertIn("result", reply, reply)
        self.assertEqual(self.outputs(reply["result"]["ids"]), [b"%d\n" % i for i in range(10)])

    def test_a_request_for_more_than_16_passed_descriptors_is_refused_naming_the_17th(self):
        params = {"defaults": {"argv": ["cat"], "stdin_fd": True}, "tasks": [{}] * 16 + [{"stdin": "/dev/null"}, {}]}
        reply = self.conn.call("task.submit_batch", params)
        self.assertEqual(reply["error"]["code"], -32602, reply)
        self.assertIn("params.tasks[17].stdin_fd: at most 16", reply["error"]["message"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
