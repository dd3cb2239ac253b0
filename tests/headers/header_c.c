/* Compiled with -std=c11 -Wall -Wextra -pedantic -Werror. */
#include <banger/banger.h>
int main(void) { return banger_version() ? 0 : 1; }
