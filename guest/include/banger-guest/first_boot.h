/*
 * The contract of banger-first-boot, the guest's first-boot init
 * (guest/first-boot/banger-first-boot, a POSIX sh script, and its
 * oneshot unit): what the host library writes for it and reads from it.
 * Shared by the host (kernel command line, image patch step, identity
 * disk, readiness) and, since a shell script cannot include a C header,
 * bound to the script and the units by unit.test_guest_contract, which
 * reads them and fails when they spell any of these differently.  The
 * formats are docs/guest-identity.md.
 */
#ifndef BANGER_GUEST_FIRST_BOOT_H
#define BANGER_GUEST_FIRST_BOOT_H

/* The program in images: the kernel runs it as init= when there is no
 * initrd; its unit runs it in oneshot mode otherwise. */
#define BG_FB_NAME "banger-first-boot"
#define BG_FB_GUEST_DIR "/usr/local/libexec"
#define BG_FB_GUEST_PATH BG_FB_GUEST_DIR "/" BG_FB_NAME
#define BG_FB_UNIT_NAME BG_FB_NAME ".service"

/* A fatal error in PID 1 mode is one console line starting with this;
 * the host ends its readiness wait on it and reports the rest. */
#define BG_FB_ERROR_MARK "BANGER-ERROR: "

/* The disks, in the order every VMM driver attaches them. */
#define BG_FB_SYSTEM_DISK "/dev/vda"
#define BG_FB_WORK_DISK "/dev/vdb"          /* ext4, mounted on BG_FB_WORK_MOUNT */
#define BG_FB_WORK_DISK_UNIT "dev-vdb.device" /* never masked (bootargs) */
#define BG_FB_WORK_MOUNT "/root"
#define BG_FB_IDENTITY_DISK "/dev/vdc"      /* raw ustar, read-only */

/* The identity disk's members. */
#define BG_FB_ID_DIR "banger/"
#define BG_FB_ID_HOSTNAME BG_FB_ID_DIR "hostname"
#define BG_FB_ID_NETWORK BG_FB_ID_DIR "network.env"
#define BG_FB_ID_HOST_KEY BG_FB_ID_DIR "ssh_host_ed25519_key"
#define BG_FB_ID_HOST_KEY_PUB BG_FB_ID_HOST_KEY ".pub"
#define BG_FB_ID_AUTHORIZED_KEYS BG_FB_ID_DIR "authorized_keys"

/* Where the guest keeps the keys sshd accepts for root, outside root's
 * home so the work disk mounted on /root cannot hide them: first boot
 * installs them there and `banger vm authsync` rewrites the file. */
#define BG_FB_GUEST_CONF_DIR "/etc/banger"
#define BG_FB_AUTHORIZED_KEYS BG_FB_GUEST_CONF_DIR "/authorized_keys"

/* The keys of network.env (KEY='value' lines, never sourced). */
#define BG_FB_NET_IP "BANGER_IP"
#define BG_FB_NET_PREFIX "BANGER_PREFIX"
#define BG_FB_NET_GATEWAY "BANGER_GATEWAY"
#define BG_FB_NET_DNS "BANGER_DNS"
#define BG_FB_NET_IFACE "BANGER_IFACE"
#define BG_FB_NET_NAT "BANGER_NAT"

#endif
