#!/usr/bin/env python3
"""List banger VMs from Python through ctypes: FFI is a first-class consumer.

Usage: list_vms.py [PATH_TO_libbanger.so.0]
"""
import ctypes
import sys


class BangerError(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("os_errno", ctypes.c_int),
                ("lib_code", ctypes.c_int), ("lib", ctypes.c_char_p),
                ("message", ctypes.c_char_p)]


def load(path):
    lib = ctypes.CDLL(path)
    lib.banger_version.restype = ctypes.c_char_p
    lib.banger_error_last.restype = ctypes.POINTER(BangerError)
    lib.banger_ctx_open.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p]
    lib.banger_ctx_close.argtypes = [ctypes.c_void_p]
    lib.banger_vm_list_all.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p]
    lib.banger_vm_list_count.argtypes = [ctypes.c_void_p]
    lib.banger_vm_list_count.restype = ctypes.c_size_t
    lib.banger_vm_list_get.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    lib.banger_vm_list_get.restype = ctypes.c_void_p
    lib.banger_vm_list_free.argtypes = [ctypes.c_void_p]
    for name in ("banger_vm_name", "banger_vm_guest_ip"):
        fn = getattr(lib, name)
        fn.argtypes = [ctypes.c_void_p]
        fn.restype = ctypes.c_char_p
    # states are numbers (banger_vm_state_t); the library names them
    lib.banger_vm_state.argtypes = [ctypes.c_void_p]
    lib.banger_vm_state.restype = ctypes.c_int
    lib.banger_vm_state_name.argtypes = [ctypes.c_int]
    lib.banger_vm_state_name.restype = ctypes.c_char_p
    return lib


def check(lib, rc):
    if rc != 0:
        err = lib.banger_error_last()
        msg = err.contents.message.decode() if err else "unknown error"
        raise RuntimeError(f"banger error {rc}: {msg}")


def main():
    lib = load(sys.argv[1] if len(sys.argv) > 1 else "libbanger.so.0")
    ctx = ctypes.c_void_p()
    check(lib, lib.banger_ctx_open(ctypes.byref(ctx), None))
    try:
        vms = ctypes.c_void_p()
        check(lib, lib.banger_vm_list_all(ctypes.byref(vms), ctx))
        n = lib.banger_vm_list_count(vms)
        print(f"libbanger {lib.banger_version().decode()}: {n} VM(s)")
        for i in range(n):
            vm = lib.banger_vm_list_get(vms, i)
            ip = lib.banger_vm_guest_ip(vm)
            state = lib.banger_vm_state_name(lib.banger_vm_state(vm)).decode()
            print(f"{lib.banger_vm_name(vm).decode()}\t{state}\t"
                  f"{ip.decode() if ip else '-'}")
        lib.banger_vm_list_free(vms)
    finally:
        lib.banger_ctx_close(ctx)


if __name__ == "__main__":
    main()
