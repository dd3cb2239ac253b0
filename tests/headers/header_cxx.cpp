// Compiled as C++ with -Wall -Wextra -pedantic -Werror.
#include <banger/banger.h>
int main() { return banger_version() ? 0 : 1; }
