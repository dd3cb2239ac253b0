/* The top-level command table: every noun, in the order `banger --help`
 * lists them. */
#include "cli.h"

const cli_cmd *const cli_nouns[] = {
	&cli_vm_cmd,
	&cli_session_cmd,
	&cli_known_hosts_cmd,
	&cli_ssh_config_cmd,
	&cli_ssh_proxy_cmd,
	&cli_gc_cmd,
	&cli_store_cmd,
	&cli_kernel_cmd,
	&cli_image_cmd,
	&cli_doctor_cmd,
	&cli_version_cmd,
	NULL,
};
