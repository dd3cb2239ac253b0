/* Example: open banger's state and list VMs, using only the installed
 * library.  Build: cc list_vms.c $(pkg-config --cflags --libs libbanger) */
#include <banger/banger.h>
#include <stdio.h>

int main(void)
{
	banger_ctx *ctx;
	int rc = banger_ctx_open(&ctx, NULL);
	if (rc) {
		fprintf(stderr, "banger: %s\n", banger_error_last()->message);
		return 1;
	}
	banger_vm_list *list;
	if ((rc = banger_vm_list_all(&list, ctx)) == 0) {
		printf("libbanger %s: %zu VM(s)\n", banger_version(), banger_vm_list_count(list));
		for (size_t i = 0; i < banger_vm_list_count(list); i++) {
			const banger_vm *vm = banger_vm_list_get(list, i);
			printf("%s\t%s\t%s\n", banger_vm_name(vm), banger_vm_state_name(banger_vm_state(vm)),
			       banger_vm_guest_ip(vm) ? banger_vm_guest_ip(vm) : "-");
		}
		banger_vm_list_free(list);
	} else {
		fprintf(stderr, "banger: %s\n", banger_error_last()->message);
	}
	banger_ctx_close(ctx);
	return rc ? 1 : 0;
}
