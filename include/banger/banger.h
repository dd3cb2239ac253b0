/*
 * libbanger — umbrella header.  Include this one.
 */
#ifndef BANGER_H
#define BANGER_H

#include "common.h"
#include "errors.h"
#include "context.h"
#include "progress.h"
#include "host.h"
#include "vm.h"
#include "ssh.h"
#include "kernel.h"
#include "image.h"
#include "session.h"
#include "store.h"
#include "text.h"

#endif
