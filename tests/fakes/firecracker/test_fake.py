#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Tests for the fake Firecracker binary (tests/fakes/firecracker/firecracker).

Stdlib only; speaks raw HTTP/1.1 over AF_UNIX.  Run with:

    python3 tests/fakes/firecracker/test_fake.py
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "firecracker")
DEADLINE_S = 10.0

NOT_SUPPORTED_PRE = "The requested operation is not supported before starting the microVM."
NOT_SUPPORTED_POST = "The requested operation is not supported after starting the microVM."
SERDE = "An error occurred when deserializing the json body of a request: "


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    @property
    def fault(self):
        return self.json()["fault_message"]

    def __repr__(self):
        return "Response(%d, %r)" % (self.status, self.body)


class Client:
    """A minimal HTTP/1.1 client over a Unix socket (keep-alive)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(DEADLINE_S)
        self.sock.connect(path)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed by the fake")
        self.buf += data

    def read_response(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return Response(status, headers, body)

    def request(self, method, path, body=None, headers=()):
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode("utf-8")
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: localhost",
                 "Accept: application/json"]
        if body is not None:
            lines.append("Content-Type: application/json")
            lines.append("Content-Length: %d" % len(body))
        lines.extend(headers)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + (body or b""))
        return self.read_response()

    def get(self, path):
        return self.request("GET", path)

    def put(self, path, body):
        return self.request("PUT", path, body)

    def patch(self, path, body):
        return self.request("PATCH", path, body)


def write_kernel(path):
    with open(path, "wb") as f:
        f.write(b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56)


def write_file(path, size=1 << 20):
    with open(path, "wb") as f:
        f.truncate(size)


class FakeProcess:
    """Starts the fake in a temporary directory and talks to it."""

    def __init__(self, tmp, env=None, args=None, api_sock=None, wait=True):
        self.tmp = tmp
        self.sock = api_sock or os.path.join(tmp, "api.sock")
        self.record = self.sock + ".requests.jsonl"
        full_env = dict(os.environ)
        for k in list(full_env):
            if k.startswith("FC_FAKE_"):
                del full_env[k]
        full_env.update(env or {})
        self.stdout_path = os.path.join(tmp, "stdout.txt")
        self.stderr_path = os.path.join(tmp, "stderr.txt")
        cmd = [FAKE, "--api-sock", self.sock, "--id", "test-vm"] if args is None else [FAKE] + args
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, cwd=tmp, env=full_env, stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL)
        if wait:
            self.wait_for_socket()

    def wait_for_socket(self):
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("fake exited early (%s): %s"
                                     % (self.proc.returncode, self.stderr()))
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.sock)
                return
            except OSError:
                time.sleep(0.01)
            finally:
                s.close()
        raise AssertionError("API socket never appeared")

    def client(self):
        return Client(self.sock)

    def wait(self, timeout=DEADLINE_S):
        return self.proc.wait(timeout=timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def records(self):
        with open(self.record, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]


class FakeTestCase(unittest.TestCase):
    fake_env = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fcfake-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.kernel = os.path.join(self.tmp, "vmlinux")
        write_kernel(self.kernel)
        self.rootfs = os.path.join(self.tmp, "rootfs.ext4")
        write_file(self.rootfs)
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            p.stop()

    def spawn(self, env=None, **kw):
        merged = dict(self.fake_env or {})
        merged.update(env or {})
        p = FakeProcess(self.tmp, env=merged, **kw)
        self.procs.append(p)
        return p

    def start_fake(self, env=None):
        self.fake = self.spawn(env)
        self.c = self.fake.client()
        self.addCleanup(self.c.close)
        return self.c

    def ok(self, resp, status=204):
        self.assertEqual(resp.status, status, resp)
        return resp

    def bad(self, resp, fault=None, contains=None, status=400):
        self.assertEqual(resp.status, status, resp)
        if fault is not None:
            self.assertEqual(resp.fault, fault)
        if contains is not None:
            self.assertIn(contains, resp.fault)
        return resp

    def minimal_config(self, c=None):
        c = c or self.c
        self.ok(c.put("/boot-source", {"kernel_image_path": self.kernel,
                                       "boot_args": "console=ttyS0 reboot=k panic=1"}))
        self.ok(c.put("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": self.rootfs,
                                         "is_root_device": True, "is_read_only": False}))

    def boot(self, c=None):
        c = c or self.c
        self.minimal_config(c)
        self.ok(c.put("/actions", {"action_type": "InstanceStart"}))


# ---------------------------------------------------------------------------


class HappyPathTest(FakeTestCase):
    def test_boot_sequence(self):
        c = self.start_fake()
        log = os.path.join(self.tmp, "fc.log")
        metrics = os.path.join(self.tmp, "fc.metrics")
        open(log, "w").close()
        open(metrics, "w").close()
        data = os.path.join(self.tmp, "data.ext4")
        write_file(data)
        vsock = os.path.join(self.tmp, "v.sock")

        info = self.ok(c.get("/"), 200).json()
        self.assertEqual(info, {"id": "test-vm", "state": "Not started",
                                "vmm_version": "1.16.1", "app_name": "Firecracker"})
        self.assertEqual(self.ok(c.get("/version"), 200).json(),
                         {"firecracker_version": "1.16.1"})
        self.assertEqual(self.ok(c.get("/machine-config"), 200).json(),
                         {"vcpu_count": 1, "mem_size_mib": 128, "smt": False,
                          "track_dirty_pages": False, "huge_pages": "None"})
        self.ok(c.put("/logger", {"log_path": log, "level": "Info", "show_level": True}))
        self.ok(c.put("/metrics", {"metrics_path": metrics}))
        self.ok(c.put("/machine-config", {"vcpu_count": 2, "mem_size_mib": 256}))
        self.ok(c.patch("/machine-config", {"track_dirty_pages": True}))
        self.ok(c.put("/boot-source", {"kernel_image_path": self.kernel,
                                       "boot_args": "console=ttyS0 reboot=k panic=1"}))
        self.ok(c.put("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": self.rootfs,
                                         "is_root_device": True, "is_read_only": True}))
        self.ok(c.put("/drives/work", {"drive_id": "work", "path_on_host": data,
                                       "is_root_device": False, "is_read_only": False,
                                       "cache_type": "Writeback", "io_engine": "Sync"}))
        self.ok(c.put("/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0",
                                                   "guest_mac": "06:00:AC:10:00:02"}))
        self.ok(c.put("/vsock", {"guest_cid": 3, "uds_path": vsock}))
        self.assertTrue(os.path.exists(vsock), "vsock UDS is bound at PUT /vsock")
        self.ok(c.put("/mmds/config", {"version": "V2", "network_interfaces": ["eth0"]}))
        self.ok(c.put("/mmds", {"latest": {"meta-data": {"instance-id": "i-1"}}}))
        self.ok(c.put("/entropy", {}))
        self.ok(c.put("/balloon", {"amount_mib": 16, "deflate_on_oom": True,
                                   "stats_polling_interval_s": 1}))
        self.ok(c.put("/actions", {"action_type": "InstanceStart"}))

        self.assertEqual(self.ok(c.get("/"), 200).json()["state"], "Running")
        cfg = self.ok(c.get("/vm/config"), 200).json()
        self.assertEqual(cfg["machine-config"], {"vcpu_count": 2, "mem_size_mib": 256,
                                                 "smt": False, "track_dirty_pages": True,
                                                 "huge_pages": "None"})
        self.assertEqual([d["drive_id"] for d in cfg["drives"]], ["rootfs", "work"])
        self.assertEqual(cfg["drives"][1], {
            "drive_id": "work", "partuuid": None, "is_root_device": False,
            "cache_type": "Writeback", "is_read_only": False, "path_on_host": data,
            "rate_limiter": None, "io_engine": "Sync", "socket": None})
        self.assertEqual(cfg["network-interfaces"][0]["guest_mac"], "06:00:ac:10:00:02")
        self.assertEqual(cfg["vsock"], {"guest_cid": 3, "uds_path": vsock})
        self.assertEqual(cfg["mmds-config"], {"version": "V2", "network_interfaces": ["eth0"],
                                              "ipv4_address": "169.254.169.254",
                                              "imds_compat": False})
        self.assertEqual(cfg["entropy"], {"rate_limiter": None})
        self.assertIsNone(cfg["logger"])
        self.assertEqual(cfg["boot-source"]["kernel_image_path"], self.kernel)

        self.ok(c.patch("/mmds", {"latest": {"meta-data": {"hostname": "vm"}}}))
        self.assertEqual(self.ok(c.get("/mmds"), 200).json(),
                         {"latest": {"meta-data": {"instance-id": "i-1", "hostname": "vm"}}})
        self.ok(c.patch("/drives/work", {"drive_id": "work", "path_on_host": self.rootfs}))
        self.ok(c.patch("/network-interfaces/eth0", {
            "iface_id": "eth0", "rx_rate_limiter": {"bandwidth": {"size": 1000,
                                                                  "refill_time": 100}}}))
        self.ok(c.patch("/balloon", {"amount_mib": 32}))
        self.assertEqual(self.ok(c.get("/balloon"), 200).json()["amount_mib"], 32)
        self.assertEqual(self.ok(c.get("/balloon/statistics"), 200).json()["target_mib"], 32)
        self.ok(c.patch("/vm", {"state": "Paused"}))
        self.assertEqual(self.ok(c.get("/"), 200).json()["state"], "Paused")
        self.ok(c.patch("/vm", {"state": "Resumed"}))
        self.bad(c.put("/snapshot/create", {"snapshot_path": "s", "mem_file_path": "m"}))
        self.ok(c.put("/actions", {"action_type": "FlushMetrics"}))

        with open(metrics) as f:
            lines = [json.loads(l) for l in f if l.strip()]
        self.assertEqual(len(lines), 2)  # InstanceStart + FlushMetrics
        for key in ("utc_timestamp_ms", "api_server", "balloon", "block", "block_rootfs",
                    "block_work", "deprecated_api", "get_api_requests", "i8042",
                    "latencies_us", "logger", "mmds", "net", "net_eth0",
                    "patch_api_requests", "put_api_requests", "seccomp", "signals", "uart",
                    "vcpu", "vmm", "vsock", "entropy"):
            self.assertIn(key, lines[-1])
        self.assertIsInstance(lines[-1]["vcpu"]["exit_io_out"], int)
        self.assertGreater(lines[0]["put_api_requests"]["drive_count"], 0)

        self.ok(c.put("/actions", {"action_type": "SendCtrlAltDel"}))
        self.assertEqual(self.fake.wait(), 0)
        with open(log) as f:
            text = f.read()
        self.assertIn("[test-vm:fc_api:INFO] The API server received a Put request on "
                      "\"/actions\"", text)
        with open(metrics) as f:
            self.assertEqual(len([l for l in f if l.strip()]), 3)  # + flush at exit

        recs = self.fake.records()
        self.assertEqual(recs[0], {"method": "GET", "path": "/", "body": None, "status": 200})
        self.assertIn({"method": "PUT", "path": "/actions",
                       "body": {"action_type": "InstanceStart"}, "status": 204}, recs)
        self.assertEqual(recs[-1], {"method": "PUT", "path": "/actions",
                                    "body": {"action_type": "SendCtrlAltDel"}, "status": 204})
        self.assertEqual([(r["method"], r["path"], r["status"]) for r in recs], [
            ("GET", "/", 200), ("GET", "/version", 200), ("GET", "/machine-config", 200),
            ("PUT", "/logger", 204), ("PUT", "/metrics", 204), ("PUT", "/machine-config", 204),
            ("PATCH", "/machine-config", 204), ("PUT", "/boot-source", 204),
            ("PUT", "/drives/rootfs", 204), ("PUT", "/drives/work", 204),
            ("PUT", "/network-interfaces/eth0", 204), ("PUT", "/vsock", 204),
            ("PUT", "/mmds/config", 204), ("PUT", "/mmds", 204), ("PUT", "/entropy", 204),
            ("PUT", "/balloon", 204), ("PUT", "/actions", 204), ("GET", "/", 200),
            ("GET", "/vm/config", 200), ("PATCH", "/mmds", 204), ("GET", "/mmds", 200),
            ("PATCH", "/drives/work", 204), ("PATCH", "/network-interfaces/eth0", 204),
            ("PATCH", "/balloon", 204), ("GET", "/balloon", 200),
            ("GET", "/balloon/statistics", 200), ("PATCH", "/vm", 204), ("GET", "/", 200),
            ("PATCH", "/vm", 204), ("PUT", "/snapshot/create", 400), ("PUT", "/actions", 204),
            ("PUT", "/actions", 204)])

    def test_console_and_stdout_log(self):
        c = self.start_fake()
        self.boot()
        out = self.fake.stdout()
        self.assertIn("[test-vm:main] Running Firecracker v1.16.1", out)
        self.assertIn("[test-vm:fc_api] API server started.", out)
        self.assertIn("Command line: console=ttyS0 reboot=k panic=1", out)

    def test_repeated_puts_update_preboot(self):
        c = self.start_fake()
        self.minimal_config()
        other = os.path.join(self.tmp, "other.ext4")
        write_file(other)
        self.ok(c.put("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": other,
                                         "is_root_device": True}))
        self.ok(c.put("/drives/scratch", {"drive_id": "scratch", "path_on_host": other,
                                          "is_root_device": False}))
        self.ok(c.put("/drives/scratch", {"drive_id": "scratch", "path_on_host": other,
                                          "is_root_device": False, "is_read_only": True}))
        drives = self.ok(c.get("/vm/config"), 200).json()["drives"]
        self.assertEqual([(d["drive_id"], d["path_on_host"], d["is_read_only"]) for d in drives],
                         [("rootfs", other, False), ("scratch", other, True)])
        # The logger may be reconfigured before boot (Firecracker >= 1.5).
        log = os.path.join(self.tmp, "a.log")
        open(log, "w").close()
        self.ok(c.put("/logger", {"log_path": log}))
        self.ok(c.put("/logger", {"level": "Warning"}))

    def test_deprecated_fields_set_header(self):
        c = self.start_fake()
        r = self.ok(c.put("/machine-config", {"vcpu_count": 2, "mem_size_mib": 256,
                                              "cpu_template": "None"}))
        self.assertEqual(r.headers.get("deprecation"), "true")
        r = self.ok(c.put("/machine-config", {"vcpu_count": 2, "mem_size_mib": 256}))
        self.assertNotIn("deprecation", r.headers)


class RejectionTest(FakeTestCase):
    def setUp(self):
        FakeTestCase.setUp(self)
        self.start_fake()

    def test_response_shape(self):
        r = self.c.get("/nope")
        self.assertEqual(r.status, 400)
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertEqual(r.body, b'{"fault_message":"Invalid request method and/or path: '
                                 b'GET nope."}')
        r = self.c.put("/machine-config", {"vcpu_count": 1, "mem_size_mib": 64})
        self.assertEqual(r.status, 204)
        self.assertNotIn("content-length", r.headers)
        self.assertEqual(r.body, b"")

    def test_unknown_field(self):
        self.bad(self.c.request("PUT", "/boot-source", '{"kernel_image_path": "k", "extra": 1}'),
                 SERDE + "unknown field `extra`, expected one of `kernel_image_path`, "
                 "`initrd_path`, `boot_args` at line 1 column 34.")
        self.bad(self.c.put("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": self.rootfs,
                                               "is_root_device": True, "readonly": True}),
                 contains="unknown field `readonly`, expected one of `drive_id`, `partuuid`, "
                          "`is_root_device`, `cache_type`, `is_read_only`, `path_on_host`, "
                          "`rate_limiter`, `io_engine`, `socket`")
        self.bad(self.c.put("/actions", {"action_type": "InstanceStart", "payload": "x"}),
                 contains="unknown field `payload`, expected `action_type`")
        self.bad(self.c.put("/drives/rootfs", {
            "drive_id": "rootfs", "path_on_host": self.rootfs, "is_root_device": True,
            "rate_limiter": {"ops": {"size": 1, "refill_time": 1, "burst": 1}}}),
            contains="unknown field `burst`, expected one of `size`, `one_time_burst`, "
                     "`refill_time`")
        # MetricsConfig is not deny_unknown_fields in Firecracker.
        m = os.path.join(self.tmp, "m")
        open(m, "w").close()
        self.ok(self.c.put("/metrics", {"metrics_path": m, "emit_id": True}))

    def test_missing_required_field(self):
        self.bad(self.c.request("PUT", "/machine-config", '{"mem_size_mib": 128}'),
                 SERDE + "missing field `vcpu_count` at line 1 column 21.")
        self.bad(self.c.request("PUT", "/machine-config", '{"vcpu_count": 2}'),
                 SERDE + "missing field `mem_size_mib` at line 1 column 17.")
        self.bad(self.c.put("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": self.rootfs}),
                 contains="missing field `is_root_device`")
        self.bad(self.c.put("/boot-source", {"boot_args": "x"}),
                 contains="missing field `kernel_image_path`")
        self.bad(self.c.put("/network-interfaces/eth0", {"iface_id": "eth0"}),
                 contains="missing field `host_dev_name`")
        self.bad(self.c.put("/vsock", {"uds_path": "v.sock"}), contains="missing field `guest_cid`")
        self.bad(self.c.put("/actions", {}), contains="missing field `action_type`")
        body = ('{\n    "snapshot_path": "foo",\n    "mem_backend": {\n'
                '        "backend_path": "bar"\n    }\n}')
        self.bad(self.c.request("PUT", "/snapshot/load", body),
                 SERDE + "missing field `backend_type` at line 5 column 5.")

    def test_wrong_types(self):
        self.bad(self.c.request("PUT", "/machine-config", '{"vcpu_count": "2", "mem_size_mib": 1}'),
                 SERDE + 'invalid type: string "2", expected u8 at line 1 column 18.')
        self.bad(self.c.put("/machine-config", {"vcpu_count": -2, "mem_size_mib": 128}),
                 contains="invalid value: integer `-2`, expected u8")
        self.bad(self.c.put("/machine-config", {"vcpu_count": 256, "mem_size_mib": 128}),
                 contains="invalid value: integer `256`, expected u8")
        self.bad(self.c.put("/machine-config", {"vcpu_count": 2, "mem_size_mib": 1.5}),
                 contains="invalid type: floating point `1.5`, expected usize")
        self.bad(self.c.put("/machine-config", {"vcpu_count": 2, "mem_size_mib": 1 << 64}),
                 contains="invalid type: floating point")
        self.bad(self.c.put("/machine-config", {"vcpu_count": 2, "mem_size_mib": 128,
                                                "smt": "yes"}),
                 contains='invalid type: string "yes", expected a boolean')
        self.bad(self.c.put("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": self.rootfs,
                                               "is_root_device": "true"}),
                 contains='invalid type: string "true", expected a boolean')
        self.bad(self.c.put("/boot-source", {"kernel_image_path": 7}),
                 contains="invalid type: integer `7`, expected a string")
        self.bad(self.c.put("/boot-source", {"kernel_image_path": None}),
                 contains="invalid type: null, expected a string")
        self.bad(self.c.put("/machine-config", {"vcpu_count": 2, "mem_size_mib": 128,
                                                "huge_pages": "7M"}),
                 contains="unknown variant `7M`, expected `None` or `2M`")
        self.bad(self.c.put("/actions", {"action_type": "Reboot"}),
                 contains="unknown variant `Reboot`, expected one of `FlushMetrics`, "
                          "`InstanceStart`, `SendCtrlAltDel`")
        self.bad(self.c.put("/network-interfaces/eth0", {"iface_id": "eth0",
                                                         "host_dev_name": "tap0",
                                                         "guest_mac": "zz"}),
                 contains="The provided MAC address is not valid.")
        self.bad(self.c.put("/vsock", {"guest_cid": "3", "uds_path": "v"}),
                 contains='invalid type: string "3", expected u32')
        self.bad(self.c.put("/boot-source", []), contains="invalid type: sequence, expected "
                                                          "struct BootSourceConfig")
        self.bad(self.c.request("PUT", "/boot-source", "not json"),
                 SERDE + "expected ident at line 1 column 2.")
        self.bad(self.c.request("PUT", "/boot-source", '{"kernel_image_path": "x",}'),
                 SERDE + "trailing comma at line 1 column 27.")
        self.bad(self.c.request("PUT", "/machine-config", '{"vcpu_count": 1, "mem_size_mib": 1} x'),
                 SERDE + "trailing characters at line 1 column 38.")

    def test_vcpu_and_memory_rules(self):
        vcpu_err = ("Machine config error: The number of vCPUs must be greater than 0, less than "
                    "32 and must be 1 or an even number if SMT is enabled.")
        self.bad(self.c.put("/machine-config", {"vcpu_count": 0, "mem_size_mib": 128}), vcpu_err)
        self.bad(self.c.put("/machine-config", {"vcpu_count": 33, "mem_size_mib": 128}), vcpu_err)
        self.bad(self.c.put("/machine-config", {"vcpu_count": 3, "mem_size_mib": 128,
                                                "smt": True}), vcpu_err)
        self.ok(self.c.put("/machine-config", {"vcpu_count": 32, "mem_size_mib": 128}))
        # Like Firecracker, odd counts are only refused with SMT enabled.
        self.ok(self.c.put("/machine-config", {"vcpu_count": 3, "mem_size_mib": 128}))
        self.bad(self.c.patch("/machine-config", {"smt": True}), vcpu_err)
        self.bad(self.c.put("/machine-config", {"vcpu_count": 2, "mem_size_mib": 0}),
                 "Machine config error: The memory size (MiB) is either 0, or not a multiple of "
                 "the configured page size.")
        self.bad(self.c.patch("/machine-config", {}), "Empty PATCH request.")
        self.assertEqual(self.ok(self.c.get("/machine-config"), 200).json()["vcpu_count"], 3)

    def test_boot_source_paths(self):
        self.bad(self.c.put("/boot-source", {"kernel_image_path": "/nonexistent/vmlinux"}),
                 "Boot source error: The kernel file cannot be opened: No such file or "
                 "directory (os error 2)")
        self.bad(self.c.put("/boot-source", {"kernel_image_path": self.kernel,
                                             "initrd_path": "/nonexistent/initrd"}),
                 contains="The initrd file cannot be opened")
        self.bad(self.c.put("/boot-source", {"kernel_image_path": self.kernel,
                                             "boot_args": "x" * 2048}),
                 contains="The kernel command line is invalid")

    def test_non_elf_kernel_refused_at_start(self):
        bz = os.path.join(self.tmp, "bzImage")
        with open(bz, "wb") as f:
            f.write(b"MZ\x00\x00" + b"\x00" * 508)
        self.ok(self.c.put("/boot-source", {"kernel_image_path": bz}))
        self.bad(self.c.put("/actions", {"action_type": "InstanceStart"}),
                 contains="Cannot load kernel due to invalid memory configuration or invalid "
                          "kernel image")
        self.assertEqual(self.ok(self.c.get("/"), 200).json()["state"], "Not started")

    def test_drive_rules(self):
        self.bad(self.c.put("/drives/rootfs", {"drive_id": "rootfs",
                                               "path_on_host": "/nonexistent.ext4",
                                               "is_root_device": True}),
                 "Drive config error: Unable to create the virtio block device: Virtio backend "
                 "error: Error manipulating the backing file: No such file or directory (os "
                 "error 2) /nonexistent.ext4")
        self.bad(self.c.put("/drives/rootfs", {"drive_id": "other", "path_on_host": self.rootfs,
                                               "is_root_device": True}),
                 "The id from the path does not match the id from the body!")
        self.bad(self.c.put("/drives/bad-id", {"drive_id": "bad-id", "path_on_host": self.rootfs,
                                               "is_root_device": True}),
                 "API Resource IDs can only contain alphanumeric characters and underscores.")
        self.bad(self.c.put("/drives", {"drive_id": "x", "path_on_host": self.rootfs,
                                        "is_root_device": True}),
                 "The ID cannot be empty.")
        self.ok(self.c.put("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": self.rootfs,
                                              "is_root_device": True}))
        self.bad(self.c.put("/drives/second", {"drive_id": "second", "path_on_host": self.rootfs,
                                               "is_root_device": True}),
                 "Drive config error: A root block device already exists!")
        # Re-putting the existing root device is an update, not a second root.
        self.ok(self.c.put("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": self.rootfs,
                                              "is_root_device": True, "is_read_only": True}))
        self.bad(self.c.patch("/drives/rootfs", {"drive_id": "rootfs",
                                                 "path_on_host": self.rootfs}),
                 NOT_SUPPORTED_PRE)

    def test_network_rules(self):
        self.bad(self.c.put("/network-interfaces/eth0", {"iface_id": "eth1",
                                                         "host_dev_name": "tap0"}),
                 "The id from the path does not match the id from the body!")
        self.ok(self.c.put("/network-interfaces/eth0", {"iface_id": "eth0",
                                                        "host_dev_name": "tap0",
                                                        "guest_mac": "06:00:00:00:00:01"}))
        self.bad(self.c.put("/network-interfaces/eth1", {"iface_id": "eth1",
                                                         "host_dev_name": "tap1",
                                                         "guest_mac": "06:00:00:00:00:01"}),
                 "Network config error: The MAC address is already in use: 06:00:00:00:00:01")
        self.bad(self.c.put("/network-interfaces/eth1", {"iface_id": "eth1",
                                                         "host_dev_name": "tap0"}),
                 contains="Could not create the network device")
        self.bad(self.c.put("/network-interfaces/eth1", {"iface_id": "eth1",
                                                         "host_dev_name": "a" * 16}),
                 contains="Could not create the network device")
        self.bad(self.c.put("/mmds/config", {"network_interfaces": []}),
                 contains="The list of network interface IDs that allow forwarding MMDS "
                          "requests is empty.")
        self.bad(self.c.put("/mmds/config", {"network_interfaces": ["nope"]}),
                 contains="does not correspond to any existing network interface.")

    def test_metrics_once_and_logger_file_must_exist(self):
        m = os.path.join(self.tmp, "metrics")
        self.bad(self.c.put("/metrics", {"metrics_path": m}),
                 "Metrics error: No such file or directory (os error 2)")
        open(m, "w").close()
        self.ok(self.c.put("/metrics", {"metrics_path": m}))
        self.bad(self.c.put("/metrics", {"metrics_path": m}),
                 "Metrics error: Reinitialization of metrics not allowed.")
        self.bad(self.c.put("/logger", {"log_path": os.path.join(self.tmp, "missing.log")}),
                 "Logger error: Failed to open target file: No such file or directory (os "
                 "error 2)")
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "missing.log")))

    def test_logger_once_knob(self):
        fake = self.spawn({"FC_FAKE_LOGGER_ONCE": "1"}, api_sock=os.path.join(self.tmp, "b.sock"))
        c = fake.client()
        self.addCleanup(c.close)
        self.ok(c.put("/logger", {"level": "Info"}))
        self.bad(c.put("/logger", {"level": "Info"}), contains="Logger error")

    def test_post_boot_only_before_boot(self):
        self.bad(self.c.put("/actions", {"action_type": "SendCtrlAltDel"}), NOT_SUPPORTED_PRE)
        self.bad(self.c.put("/actions", {"action_type": "FlushMetrics"}), NOT_SUPPORTED_PRE)
        self.bad(self.c.patch("/vm", {"state": "Paused"}), NOT_SUPPORTED_PRE)
        self.bad(self.c.patch("/network-interfaces/eth0", {"iface_id": "eth0"}), NOT_SUPPORTED_PRE)
        self.bad(self.c.patch("/balloon", {"amount_mib": 1}), NOT_SUPPORTED_PRE)
        self.bad(self.c.put("/snapshot/create", {"snapshot_path": "s", "mem_file_path": "m"}),
                 NOT_SUPPORTED_PRE)

    def test_start_without_boot_source(self):
        self.bad(self.c.put("/actions", {"action_type": "InstanceStart"}),
                 "Start microvm error: Cannot start microvm without kernel configuration.")

    def test_pre_boot_only_after_boot(self):
        self.boot()
        self.bad(self.c.put("/actions", {"action_type": "InstanceStart"}), NOT_SUPPORTED_POST)
        self.bad(self.c.put("/boot-source", {"kernel_image_path": self.kernel}), NOT_SUPPORTED_POST)
        self.bad(self.c.put("/machine-config", {"vcpu_count": 2, "mem_size_mib": 256}),
                 NOT_SUPPORTED_POST)
        self.bad(self.c.patch("/machine-config", {"vcpu_count": 4}), NOT_SUPPORTED_POST)
        self.bad(self.c.put("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": self.rootfs,
                                               "is_root_device": True}), NOT_SUPPORTED_POST)
        self.bad(self.c.put("/network-interfaces/eth0", {"iface_id": "eth0",
                                                         "host_dev_name": "tap0"}),
                 NOT_SUPPORTED_POST)
        self.bad(self.c.put("/vsock", {"guest_cid": 3, "uds_path": "v.sock"}), NOT_SUPPORTED_POST)
        self.bad(self.c.put("/logger", {"level": "Info"}), NOT_SUPPORTED_POST)
        self.bad(self.c.put("/metrics", {"metrics_path": "m"}), NOT_SUPPORTED_POST)
        self.bad(self.c.put("/entropy", {}), NOT_SUPPORTED_POST)
        self.bad(self.c.put("/balloon", {"amount_mib": 1, "deflate_on_oom": False}),
                 NOT_SUPPORTED_POST)
        self.bad(self.c.put("/mmds/config", {"network_interfaces": ["eth0"]}), NOT_SUPPORTED_POST)
        # Body errors are reported before the state check, like Firecracker.
        self.bad(self.c.put("/boot-source", {}), contains="missing field `kernel_image_path`")
        # MMDS data and GETs keep working after boot.
        self.ok(self.c.put("/mmds", {"k": "v"}))
        self.ok(self.c.get("/vm/config"), 200)
        self.ok(self.c.patch("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": self.rootfs}))
        self.bad(self.c.patch("/drives/rootfs", {"drive_id": "rootfs"}),
                 contains="Running method expected different backend.")
        self.bad(self.c.patch("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "foo.bar"}),
                 contains="Error manipulating the backing file: No such file or directory (os "
                          "error 2) foo.bar")
        self.bad(self.c.patch("/drives/rootfs", {"drive_id": "rootfs", "is_read_only": True}),
                 contains="unknown field `is_read_only`")

    def test_paths_and_methods(self):
        self.bad(self.c.get("/foo"), "Invalid request method and/or path: GET foo.")
        self.bad(self.c.put("/foo", {}), "Invalid request method and/or path: PUT foo.")
        self.bad(self.c.patch("/boot-source", {"kernel_image_path": "x"}),
                 "Invalid request method and/or path: PATCH boot-source.")
        self.bad(self.c.patch("/logger", {"level": "Info"}),
                 "Invalid request method and/or path: PATCH logger.")
        self.bad(self.c.get("/vm"), "Invalid request method and/or path: GET vm.")
        self.bad(self.c.request("GET", "/machine-config", "{}"), "GET request cannot have a body.")
        self.bad(self.c.request("PUT", "/boot-source"), "Empty PUT request.")
        self.bad(self.c.request("PATCH", "/machine-config"), "Empty PATCH request.")
        self.bad(self.c.put("/mmds/other", {}), "Unrecognized PUT request path `other`.")
        self.bad(self.c.put("/snapshot", {}), "Missing snapshot operation type.")
        self.bad(self.c.get("/balloon"), contains="No balloon device found")
        self.bad(self.c.patch("/mmds", {"a": 1}), "MMDS error: The MMDS data store is not "
                                                  "initialized.")
        self.assertEqual(self.ok(self.c.get("/mmds"), 200).json(), {})
        # Methods micro_http does not know are refused at the HTTP layer, with
        # its own (not fault_message) error body, and the connection is closed.
        c2 = self.fake.client()
        r = c2.request("DELETE", "/drives/rootfs")
        self.assertEqual(r.status, 400)
        self.assertEqual(r.body, b'{ "error": "Invalid HTTP Method: Unsupported HTTP method.\n'
                                 b'All previous unanswered requests will be dropped." }')
        self.assertRaises((EOFError, OSError), c2.get, "/")
        c2.close()
        c3 = self.fake.client()
        self.assertEqual(c3.request("POST", "/actions", {"action_type": "x"}).status, 400)
        c3.close()

    def test_vsock_socket_in_use(self):
        path = os.path.join(self.tmp, "stale.sock")
        open(path, "w").close()
        self.bad(self.c.put("/vsock", {"guest_cid": 3, "uds_path": path}),
                 "Vsock config error: Cannot create backend for vsock device: Error binding to "
                 "the host-side Unix socket: Address already in use (os error 98)")
        self.bad(self.c.put("/vsock", {"guest_cid": 2, "uds_path": path + "2"}),
                 contains="guest_cid >= 3")
        v = os.path.join(self.tmp, "v.sock")
        self.ok(self.c.put("/vsock", {"guest_cid": 3, "uds_path": v}))
        # Updating the device re-creates the socket (old one removed first).
        self.ok(self.c.put("/vsock", {"guest_cid": 4, "uds_path": v}))
        r = self.ok(self.c.put("/vsock", {"vsock_id": "vsock0", "guest_cid": 4, "uds_path": v}))
        self.assertEqual(r.headers.get("deprecation"), "true")

    def test_mmds_limit(self):
        self.ok(self.c.put("/mmds", {"a": "x" * 30000}))
        self.bad(self.c.patch("/mmds", {"b": "y" * 30000}), status=413,
                 contains="MMDS limit exceeded")
        self.assertEqual(set(self.ok(self.c.get("/mmds"), 200).json()), {"a"})


class HttpTest(FakeTestCase):
    def setUp(self):
        FakeTestCase.setUp(self)
        self.start_fake()

    def test_keep_alive_and_sequential_connections(self):
        for _ in range(3):
            c = self.fake.client()
            for _ in range(3):
                r = self.ok(c.get("/"), 200)
                self.assertEqual(r.headers["connection"], "keep-alive")
                self.assertEqual(r.headers["server"], "Firecracker API")
            c.close()
        # Two clients open at once are both served.
        a, b = self.fake.client(), self.fake.client()
        self.ok(b.get("/version"), 200)
        self.ok(a.get("/version"), 200)
        a.close()
        b.close()

    def test_pipelined_requests(self):
        body = b'{"vcpu_count": 2, "mem_size_mib": 256}'
        req = (b"PUT /machine-config HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
               + b"GET /machine-config HTTP/1.1\r\n\r\n")
        self.c.send_raw(req)
        self.assertEqual(self.c.read_response().status, 204)
        r = self.c.read_response()
        self.assertEqual(r.json()["mem_size_mib"], 256)

    def test_chunked_request(self):
        body = b'{"vcpu_count": 4, "mem_size_mib": 512}'
        req = (b"PUT /machine-config HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked"
               b"\r\nContent-Type: application/json\r\n\r\n"
               + b"%x\r\n%s\r\n" % (10, body[:10]) + b"%x\r\n%s\r\n" % (len(body) - 10, body[10:])
               + b"0\r\n\r\n")
        self.c.send_raw(req)
        self.assertEqual(self.c.read_response().status, 204)
        self.assertEqual(self.ok(self.c.get("/machine-config"), 200).json()["vcpu_count"], 4)
        self.assertEqual(self.fake.records()[0]["body"], {"vcpu_count": 4, "mem_size_mib": 512})

    def test_chunked_request_strict_mode(self):
        fake = self.spawn({"FC_FAKE_STRICT_HTTP": "1"}, api_sock=os.path.join(self.tmp, "s.sock"))
        c = fake.client()
        self.addCleanup(c.close)
        c.send_raw(b"PUT /machine-config HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"5\r\n{\"a\":\r\n0\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.fault, "Empty PUT request.")

    def test_expect_100_continue(self):
        body = b'{"vcpu_count": 2, "mem_size_mib": 256}'
        self.c.send_raw(b"PUT /machine-config HTTP/1.1\r\nExpect: 100-continue\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(body))
        interim = self.c.read_response()
        self.assertEqual(interim.status, 100)
        self.c.send_raw(body)
        self.assertEqual(self.c.read_response().status, 204)

    def test_payload_limit(self):
        r = self.c.request("PUT", "/mmds", {"k": "x" * 60000})
        self.assertEqual(r.status, 400)
        self.assertIn(b"is larger than the limit of 51200", r.body)


class RecordingTest(FakeTestCase):
    def test_record_format(self):
        rec = os.path.join(self.tmp, "custom.jsonl")
        c = self.start_fake({"FC_FAKE_RECORD": rec})
        self.fake.record = rec
        self.ok(c.put("/machine-config", {"vcpu_count": 2, "mem_size_mib": 256}))
        self.bad(c.request("PUT", "/boot-source", "{not json"))
        self.ok(c.get("/"), 200)
        self.bad(c.put("/actions", {"action_type": "FlushMetrics"}))
        with open(rec, encoding="utf-8") as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 4)
        self.assertEqual(json.loads(lines[0]), {"method": "PUT", "path": "/machine-config",
                                                "body": {"vcpu_count": 2, "mem_size_mib": 256},
                                                "status": 204})
        self.assertEqual(json.loads(lines[1]), {"method": "PUT", "path": "/boot-source",
                                                "body": None, "raw_body": "{not json",
                                                "status": 400})
        self.assertEqual(json.loads(lines[2]), {"method": "GET", "path": "/", "body": None,
                                                "status": 200})
        self.assertEqual(list(json.loads(lines[3])), ["method", "path", "body", "status"])
        self.assertEqual(json.loads(lines[3])["status"], 400)

    def test_default_record_path_and_flush(self):
        c = self.start_fake()
        self.ok(c.get("/version"), 200)
        # Flushed per line: visible while the fake is still running.
        self.assertEqual(self.fake.records(), [{"method": "GET", "path": "/version",
                                                "body": None, "status": 200}])

    def test_injected_failure(self):
        c = self.start_fake({"FC_FAKE_FAIL": "PUT /drives/rootfs, PUT /actions InstanceStart",
                             "FC_FAKE_FAIL_MESSAGE": "disk exploded"})
        self.ok(c.put("/boot-source", {"kernel_image_path": self.kernel}))
        self.bad(c.put("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": self.rootfs,
                                          "is_root_device": True}), "disk exploded")
        self.ok(c.put("/drives/data", {"drive_id": "data", "path_on_host": self.rootfs,
                                       "is_root_device": False}))
        self.bad(c.put("/actions", {"action_type": "InstanceStart"}), "disk exploded")
        self.bad(c.put("/actions", {"action_type": "FlushMetrics"}), NOT_SUPPORTED_PRE)
        self.assertEqual(self.fake.records()[1]["status"], 400)


class ProcessTest(FakeTestCase):
    def test_existing_socket_path_fails(self):
        path = os.path.join(self.tmp, "api.sock")
        open(path, "w").close()
        p = self.spawn(wait=False)
        self.assertEqual(p.wait(), 1)
        self.assertIn('Error: RunWithApi(FailedToBindSocket("%s"))' % path, p.stderr())
        self.assertIn("Failed to open the API socket at: %s. Check that it is not already used."
                      % path, p.stdout())
        self.assertTrue(os.path.isfile(path), "the fake must not remove the stale path")

    def test_unknown_flag(self):
        p = self.spawn(wait=False, args=["--api-sock", os.path.join(self.tmp, "x.sock"),
                                         "--bogus"])
        self.assertEqual(p.wait(), 153)
        self.assertIn('Error: ParseArguments(UnexpectedArgument("bogus"))', p.stderr())
        self.assertIn("Found argument 'bogus' which wasn't expected", p.stdout())
        p = self.spawn(wait=False, args=["--api-sock"])
        self.assertEqual(p.wait(), 153)
        self.assertIn('MissingValue("api-sock")', p.stderr())
        # --seccomp-level was removed in Firecracker 1.0.
        p = self.spawn(wait=False, args=["--seccomp-level", "0"])
        self.assertEqual(p.wait(), 153)

    def test_real_flags_accepted(self):
        log = os.path.join(self.tmp, "cli.log")
        met = os.path.join(self.tmp, "cli.metrics")
        open(log, "w").close()
        open(met, "w").close()
        sock = os.path.join(self.tmp, "api.sock")
        p = self.spawn(args=["--api-sock", sock, "--id=vm-7", "--level", "Debug", "--log-path",
                             log, "--show-level", "--show-log-origin", "--metrics-path", met,
                             "--boot-timer", "--no-seccomp", "--http-api-max-payload-size",
                             "100000", "--start-time-us", "1"])
        c = p.client()
        self.addCleanup(c.close)
        self.assertEqual(self.ok(c.get("/"), 200).json()["id"], "vm-7")
        self.bad(c.put("/metrics", {"metrics_path": met}),
                 "Metrics error: Reinitialization of metrics not allowed.")
        with open(log) as f:
            self.assertIn("[vm-7:main:INFO:src/firecracker/src/main.rs", f.read())
        p2 = self.spawn(wait=False, args=["--version"])
        self.assertEqual(p2.wait(), 0)
        self.assertIn("Firecracker v1.16.1", p2.stdout())

    def test_ctrl_alt_del_exits(self):
        c = self.start_fake()
        self.boot()
        self.ok(c.put("/actions", {"action_type": "SendCtrlAltDel"}))
        self.assertEqual(self.fake.wait(), 0)
        self.assertIn("Firecracker exiting successfully. exit_code=0", self.fake.stdout())

    def test_ctrl_alt_del_waits_while_paused(self):
        c = self.start_fake({"FC_FAKE_SHUTDOWN_DELAY_MS": "0"})
        self.boot()
        self.ok(c.patch("/vm", {"state": "Paused"}))
        self.ok(c.put("/actions", {"action_type": "SendCtrlAltDel"}))
        time.sleep(0.2)
        self.assertIsNone(self.fake.proc.poll(), "a paused guest cannot act on Ctrl+Alt+Del")
        self.ok(c.patch("/vm", {"state": "Resumed"}))
        self.assertEqual(self.fake.wait(), 0)

    def test_ignore_ctrl_alt_del_then_sigterm(self):
        c = self.start_fake({"FC_FAKE_IGNORE_CTRL_ALT_DEL": "1", "FC_FAKE_SHUTDOWN_DELAY_MS": "0"})
        self.boot()
        self.ok(c.put("/actions", {"action_type": "SendCtrlAltDel"}))
        time.sleep(0.2)
        self.assertIsNone(self.fake.proc.poll())
        self.ok(c.get("/"), 200)
        self.fake.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.fake.wait(), -signal.SIGTERM)

    def test_ignore_sigterm_needs_sigkill(self):
        self.start_fake({"FC_FAKE_IGNORE_SIGTERM": "1"})
        self.boot()
        self.fake.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        self.assertIsNone(self.fake.proc.poll())
        self.ok(self.c.get("/"), 200)
        self.fake.proc.send_signal(signal.SIGKILL)
        self.assertEqual(self.fake.wait(), -signal.SIGKILL)

    def test_exit_after_start(self):
        c = self.start_fake({"FC_FAKE_EXIT_AFTER_START": "1"})
        self.minimal_config()
        self.ok(c.put("/actions", {"action_type": "InstanceStart"}))
        self.assertEqual(self.fake.wait(), 0)

    def test_start_delay(self):
        p = self.spawn({"FC_FAKE_START_DELAY_MS": "1500"}, wait=False)
        time.sleep(0.3)
        self.assertFalse(os.path.exists(p.sock))
        p.wait_for_socket()

    def test_snapshot_load_is_fatal(self):
        c = self.start_fake()
        r = c.put("/snapshot/load", {"snapshot_path": "s", "mem_backend": {
            "backend_path": "m", "backend_type": "File"}})
        self.bad(r, contains="Load snapshot error")
        self.assertEqual(self.fake.wait(), 1)


class VsockTest(FakeTestCase):
    def setUp(self):
        FakeTestCase.setUp(self)
        self.guest_dir = os.path.join(self.tmp, "guest")
        os.mkdir(self.guest_dir)
        self.uds = os.path.join(self.tmp, "v.sock")

    def guest_listener(self, port):
        """A stand-in guest program listening on vsock `port`: echoes with a prefix."""
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(os.path.join(self.guest_dir, "%d.sock" % port))
        srv.listen(8)
        self.addCleanup(srv.close)

        def echo(conn):
            with conn:
                while True:
                    data = conn.recv(4096)
                    if not data:
                        break
                    conn.sendall(b"guest:" + data)

        def serve():
            while True:
                try:
                    conn, _ = srv.accept()
                except OSError:
                    return
                threading.Thread(target=echo, args=(conn,), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()

    def vsock_vm(self, env=None):
        e = {"FC_FAKE_VSOCK_GUEST_DIR": self.guest_dir}
        e.update(env or {})
        c = self.start_fake(e)
        self.minimal_config()
        self.ok(c.put("/vsock", {"guest_cid": 3, "uds_path": self.uds}))
        return c

    def dial(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(DEADLINE_S)
        s.connect(self.uds)
        self.addCleanup(s.close)
        return s

    @staticmethod
    def read_line(s):
        out = b""
        while not out.endswith(b"\n"):
            ch = s.recv(1)
            if not ch:
                break
            out += ch
        return out

    def test_connect_ok_and_relay(self):
        self.guest_listener(52)
        c = self.vsock_vm()
        self.ok(c.put("/actions", {"action_type": "InstanceStart"}))
        s = self.dial()
        s.sendall(b"CONNECT 52\n")
        self.assertEqual(self.read_line(s), b"OK 1073741824\n")
        s.sendall(b"ping")
        self.assertEqual(s.recv(100), b"guest:ping")
        s2 = self.dial()
        s2.sendall(b"connect 52\nhello")  # case-insensitive; data may follow the line
        self.assertEqual(self.read_line(s2), b"OK 1073741825\n")
        self.assertEqual(s2.recv(100), b"guest:hello")
        s2.shutdown(socket.SHUT_WR)
        self.assertEqual(s2.recv(100), b"")

    def test_refused_when_nothing_listens(self):
        c = self.vsock_vm()
        self.ok(c.put("/actions", {"action_type": "InstanceStart"}))
        s = self.dial()
        s.sendall(b"CONNECT 1024\n")
        self.assertEqual(s.recv(100), b"", "closed without any text")

    def test_malformed_request_closed(self):
        self.guest_listener(52)
        c = self.vsock_vm()
        self.ok(c.put("/actions", {"action_type": "InstanceStart"}))
        s = self.dial()
        s.sendall(b"HELLO THERE 52\n")
        self.assertEqual(s.recv(100), b"")

    def test_connection_before_boot_waits_for_start(self):
        self.guest_listener(7)
        c = self.vsock_vm()
        s = self.dial()  # queued in the backlog: the socket is bound at PUT /vsock
        s.sendall(b"CONNECT 7\n")
        s.settimeout(0.2)
        self.assertRaises(socket.timeout, s.recv, 100)
        s.settimeout(DEADLINE_S)
        self.ok(c.put("/actions", {"action_type": "InstanceStart"}))
        self.assertEqual(self.read_line(s), b"OK 1073741824\n")

    def test_stall_knob(self):
        self.guest_listener(52)
        c = self.vsock_vm({"FC_FAKE_VSOCK_STALL": "1"})
        self.ok(c.put("/actions", {"action_type": "InstanceStart"}))
        s = self.dial()
        s.sendall(b"CONNECT 52\n")
        s.settimeout(0.3)
        self.assertRaises(socket.timeout, s.recv, 100)

    def test_pause_bug_knob(self):
        self.guest_listener(52)
        c = self.vsock_vm({"FC_FAKE_VSOCK_PAUSE_BUG": "1"})
        self.ok(c.put("/actions", {"action_type": "InstanceStart"}))
        s = self.dial()
        s.sendall(b"CONNECT 52\n")
        self.assertEqual(self.read_line(s), b"OK 1073741824\n")
        self.ok(c.patch("/vm", {"state": "Paused"}))
        self.ok(c.patch("/vm", {"state": "Resumed"}))
        s2 = self.dial()
        s2.sendall(b"CONNECT 52\n")
        s2.settimeout(0.3)
        self.assertRaises(socket.timeout, s2.recv, 100)


if __name__ == "__main__":
    unittest.main(verbosity=2)
