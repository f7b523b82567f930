/*
 * maildir - relay.mode directory: every pending recipient of a message
 * gets its own copy in relay.directory, Maildir-style, for development
 * (`make run`) and tests
 *
 * One transport (relay/transport.h). A copy is written to
 * DIR/tmp/NAME, fsync'ed and renamed to DIR/new/NAME, NAME being
 * "SECONDS.MMICROSECONDSPPIDQSEQ.HOSTNAME"; once every copy of the
 * attempt is renamed, DIR/new is fsync'ed once, and only then are the
 * recipients reported delivered (250 2.0.0). The file holds the exact
 * bytes that would go on the wire (CRLF): Return-Path and Delivered-To,
 * then the envelope's prepended signatures, then the message file. A
 * step that fails defers its recipient (code 0, 4.3.0, the step and
 * errno in the text); relay is "directory" in every outcome.
 *
 * Disk writes happen on the loop thread, inside start(): every callback
 * has run when it returns (XXX a worker if this mode ever matters).
 * Return-Path is the message's own envelope sender, not the outbound
 * sender the scheduler passes (which differs only for a domain with a
 * bounce_address): what the folder has always shown.
 */
#ifndef POSTERN_MAILDIR_H
#define POSTERN_MAILDIR_H

#include "config/config.h"

struct queue;
struct transport;

/*
 * maildir_new - the transport for cfg's relay.directory, delivering
 * messages of q: creates the directory and its tmp/, new/ and cur/
 * (mode 0700) if missing. NULL with *err (newly allocated) if one
 * cannot be made, or exists and is not a directory.
 */
struct transport	*maildir_new(const struct config *, struct queue *q,
			    char **err);

#endif
