/*
 * intake: e-mail to ticket (docs/email.md "E-mail to ticket"). Each
 * tenant may name a support mailbox (IMAP over TLS, the password sealed).
 * A tick queues a mail.fetch job for it every [mail] poll_seconds (one at
 * a time per tenant: a lane); the job reads the messages not yet taken
 * (src/mail/inbound.h), and each becomes a ticket or, when it answers one
 * and comes from that ticket's customer, a comment on it. Its attachments
 * go through every check of an upload (src/files). A message is claimed
 * by its mailbox (server, user, folder) and its position there
 * (UIDVALIDITY:UID) in the transaction that makes its ticket or
 * comment, so two app servers reading one mailbox take it once; then it
 * is flagged \Seen and $Bulwark in the mailbox.
 *
 * Who a sender is: the contact whose sealed e-mail address matches the
 * From address (the blind index), believed only when the tenant's
 * receiving server says so in the topmost Authentication-Results header
 * (trusted_authserv_id: DMARC or an aligned DKIM pass). A sender who is
 * not a contact, or is one but not verified, is an unknown sender: the
 * tenant's policy refuses them, or opens a ticket under the customer it
 * names, with no contact; never a comment on an existing ticket.
 *
 * Never taken (noted in the log, no mail sent): auto-replies, bounces,
 * mail from Bulwark's own addresses, more than [mail]
 * inbound_per_sender_hour messages from one sender in an hour, a message
 * larger than [mail] inbound_max_bytes, and one that is not a message.
 */
#ifndef BW_INTAKE_H
#define BW_INTAKE_H

#include <jansson.h>
#include <stdint.h>

#include "../config/config.h"
#include "../jobs/jobs.h"
#include "../jobs/runner.h"
#include "../op/op.h"

#define INTAKE_JOB_FETCH "mail.fetch"
#define INTAKE_KINDS 1
#define INTAKE_TICKS 1
#define INTAKE_KEYWORD "$Bulwark" /* the IMAP keyword of a message taken */
#define INTAKE_BATCH 50           /* messages one fetch job takes at most */

/* The host's part ([mail]: poll_seconds, inbound_*, ca_file, timeouts, test_allow_loopback). */
void intake_configure(const struct config *cfg);

/*
 * The tenant's support mailbox: enabled, host, port, security (tls,
 * starttls, none), username, password_set, mailbox, unknown_senders
 * (refuse, create), unknown_customer_id, trusted_authserv_id, and how
 * reading it went (state: uidvalidity, next_uid, last_poll_at,
 * last_error). Never the password.
 */
bw_err intake_settings_get(struct op *op, json_t **out) BW_MUST_USE;
/*
 * Change them (each member given replaces what was there; the password
 * kept unless given, dropped when host, port, security or username
 * change). Only someone who could grant every permission may (whoever
 * picks the mailbox and whom it trusts decides whose mail counts as a
 * contact's). Audited without the password. BW_ERR_INVALID (recorded).
 */
bw_err intake_settings_put(struct op *op, json_t *in, json_t **out) BW_MUST_USE;
/* Read the mailbox at the next tick rather than at its time (audited). */
bw_err intake_poll_soon(struct op *op) BW_MUST_USE;

/*
 * One row of the log of messages taken: id, outcome (ticket, comment,
 * ignored, refused), reason, verified, ticket_id, comment_id, size,
 * created_at; never the sender or the subject. BW_ERR_NOTFOUND.
 */
bw_err intake_get(struct op *op, int64_t id, json_t **out) BW_MUST_USE;

/* The job kind (INTAKE_KINDS) and the tick (INTAKE_TICKS) of this layer. */
void intake_jobs(struct job_kind *kinds, size_t *nk, struct jobs_tick *ticks, size_t *nt);

#endif
