/*
 * rsp-sctp-peer: kernel-SCTP peers for the interop guest (vm-images/linux-sctp-interop.sh), for
 * what socat cannot do. socat 1.7.4 applies its setsockopt-int/-bin options only to the accepted
 * or connected socket, after the handshake, but Linux decides what the INIT / INIT ACK offer from
 * the endpoint's settings before it: I-DATA (net/sctp/sm_make_chunk.c lists it when
 * ep->intl_enable, set by SCTP_INTERLEAVING_SUPPORTED) and stream reset permission
 * (ep->strreset_enable, set by SCTP_ENABLE_STREAM_RESET, inherited by new associations).
 * This program sets them on the socket before listen() / connect().
 *
 *   rsp-sctp-peer sink PORT [--idata] [--reset] [--timeout SECS]
 *   rsp-sctp-peer send HOST PORT [--bytes N] [--length L] [--streams S] [--idata]
 *                      [--reset-after M] [--timeout SECS]
 *
 * sink: listens on PORT (IPv6 socket taking IPv4 too), accepts one association, reads until it
 *   ends and prints "sink bytes=<N> messages=<K> resets=<R> reset_flags=0x<hex>": bytes and
 *   complete messages (MSG_EOR) received, stream-reset notifications and the OR of their flags.
 * send: connects a one-to-one socket to HOST:PORT, sends N bytes (default 1 MiB) in messages of
 *   L bytes (default 1024; the last one shorter), message i on stream i mod S (default 1), and
 *   closes it gracefully (SHUTDOWN; SO_LINGER waits up to 60 s for the peer's acknowledgement).
 *   Prints "assoc streams=<out>" after connecting and "sent bytes=<N> messages=<K>" at the end.
 * Options:
 *   --idata          SCTP_FRAGMENT_INTERLEAVE = 2, then SCTP_INTERLEAVING_SUPPORTED = 1 (Linux
 *                    refuses the latter with EPERM unless fragment interleave is on and the
 *                    sysctl net.sctp.intl_enable is 1), and SCTP_PARTIAL_DELIVERY_POINT = 4096.
 *   --reset          SCTP_ENABLE_STREAM_RESET = RESET_STREAM | RESET_ASSOC | CHANGE_ASSOC (needs
 *                    net.sctp.reconf_enable=1 for RE-CONFIG to be offered) and the stream-reset
 *                    notification subscribed.
 *   --reset-after M  send: --reset, and after M messages an outgoing SSN reset of every stream
 *                    (SCTP_RESET_STREAMS, retried while the kernel answers EAGAIN because data is
 *                    still queued); waits for the notification, prints "reset: requested after
 *                    <M> messages" and "reset: flags=0x<hex> performed|denied|failed", then sends
 *                    the rest.
 *   --timeout SECS   overall limit (default 300).
 * Exit status: 0 on success (send: everything sent and, if asked for, the reset performed);
 * 1 on failure; 2 on bad arguments. Built statically on the host (linux-sctp-interop.sh) and put
 * into the guest with run-guest.sh --add; it needs only libc and the UAPI header <linux/sctp.h>.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/sctp.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef SOL_SCTP
#define SOL_SCTP 132
#endif

static double deadline;

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
	fprintf(stderr, "rsp-sctp-peer: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void usage(void) {
	fprintf(stderr, "usage: rsp-sctp-peer sink PORT [--idata] [--reset] [--timeout SECS]\n"
			"       rsp-sctp-peer send HOST PORT [--bytes N] [--length L] [--streams S]\n"
			"                          [--idata] [--reset-after M] [--timeout SECS]\n");
	exit(2);
}

static unsigned long long number(const char *s) {
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || end == s)
		usage();
	return v;
}

/* Milliseconds left until the deadline; exits when it has passed. */
static int left_ms(const char *what) {
	double l = deadline - now();
	if (l <= 0) {
		errno = ETIMEDOUT;
		die(what);
	}
	return (int)(l * 1000) + 1;
}

static void set_assoc_value(int fd, int opt, uint32_t value, const char *name) {
	struct sctp_assoc_value av;
	memset(&av, 0, sizeof(av));
	av.assoc_id = SCTP_FUTURE_ASSOC;
	av.assoc_value = value;
	if (setsockopt(fd, SOL_SCTP, opt, &av, sizeof(av)) < 0)
		die(name);
}

/* The endpoint settings that must precede listen() / connect(). */
static void endpoint_options(int fd, int idata, int reset, uint16_t ostreams) {
	struct sctp_initmsg im;
	memset(&im, 0, sizeof(im));
	im.sinit_num_ostreams = ostreams;
	im.sinit_max_instreams = 16;
	if (setsockopt(fd, SOL_SCTP, SCTP_INITMSG, &im, sizeof(im)) < 0)
		die("SCTP_INITMSG");
	if (idata) {
		int two = 2;
		if (setsockopt(fd, SOL_SCTP, SCTP_FRAGMENT_INTERLEAVE, &two, sizeof(two)) < 0)
			die("SCTP_FRAGMENT_INTERLEAVE");
		set_assoc_value(fd, SCTP_INTERLEAVING_SUPPORTED, 1, "SCTP_INTERLEAVING_SUPPORTED");
		/* Partial delivery from 4 KiB on: without it (pd_point 0, the default) Linux
		 * delivers a fragmented message only once it is complete, so two large messages
		 * interleaved on two streams can fill the receive window with neither complete:
		 * the kernel then drops the next TSN (no gap, so no reneging) and the association
		 * stalls (net/sctp/stream_interleave.c, sm_statefuns.c sctp_eat_data). */
		uint32_t pd = 4096;
		if (setsockopt(fd, SOL_SCTP, SCTP_PARTIAL_DELIVERY_POINT, &pd, sizeof(pd)) < 0)
			die("SCTP_PARTIAL_DELIVERY_POINT");
	}
	if (reset) {
		struct sctp_event ev;
		set_assoc_value(fd, SCTP_ENABLE_STREAM_RESET,
				SCTP_ENABLE_RESET_STREAM_REQ | SCTP_ENABLE_RESET_ASSOC_REQ |
					SCTP_ENABLE_CHANGE_ASSOC_REQ,
				"SCTP_ENABLE_STREAM_RESET");
		memset(&ev, 0, sizeof(ev));
		ev.se_assoc_id = SCTP_FUTURE_ASSOC;
		ev.se_type = SCTP_STREAM_RESET_EVENT;
		ev.se_on = 1;
		if (setsockopt(fd, SOL_SCTP, SCTP_EVENT, &ev, sizeof(ev)) < 0)
			die("SCTP_EVENT");
	}
}

/* Reads one message part; returns its length (0 at the end of the association). Sets *flags
 * to the msg_flags and copies the notification, if it is one, into buf. */
static ssize_t read_part(int fd, char *buf, size_t cap, int *flags) {
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		struct iovec iov = {.iov_base = buf, .iov_len = cap};
		struct msghdr msg;
		ssize_t n;

		if (poll(&p, 1, left_ms("waiting for data")) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (!p.revents)
			continue;
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		n = recvmsg(fd, &msg, 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (errno == ECONNRESET || errno == EPIPE || errno == ENOTCONN)
				return 0;
			die("recvmsg");
		}
		*flags = msg.msg_flags;
		return n;
	}
}

static int reset_event(const char *buf, ssize_t n, uint16_t *flags) {
	const struct sctp_stream_reset_event *ev = (const void *)buf;
	if ((size_t)n < sizeof(*ev) || ev->strreset_type != SCTP_STREAM_RESET_EVENT)
		return 0;
	*flags = ev->strreset_flags;
	return 1;
}

static int sink(int argc, char **argv) {
	int idata = 0, reset = 0, lfd, fd, one = 1, zero = 0, i;
	unsigned long long bytes = 0, msgs = 0, resets = 0;
	uint16_t reset_flags = 0;
	struct sockaddr_in6 a;
	static char buf[1 << 17];

	if (argc < 1)
		usage();
	memset(&a, 0, sizeof(a));
	a.sin6_family = AF_INET6;
	a.sin6_addr = in6addr_any;
	a.sin6_port = htons((uint16_t)number(argv[0]));
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--idata"))
			idata = 1;
		else if (!strcmp(argv[i], "--reset"))
			reset = 1;
		else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
			deadline = now() + (double)number(argv[++i]);
		else
			usage();
	}
	lfd = socket(AF_INET6, SOCK_STREAM, IPPROTO_SCTP);
	if (lfd < 0)
		die("socket");
	if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		die("SO_REUSEADDR");
	if (setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0)
		die("IPV6_V6ONLY");
	endpoint_options(lfd, idata, reset, 16);
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("bind");
	if (listen(lfd, 1) < 0)
		die("listen");
	{
		struct pollfd p = {.fd = lfd, .events = POLLIN};
		while (poll(&p, 1, left_ms("waiting for an association")) <= 0 || !p.revents)
			;
	}
	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		die("accept");
	for (;;) {
		int flags = 0;
		ssize_t n = read_part(fd, buf, sizeof(buf), &flags);
		uint16_t f;
		if (n == 0)
			break;
		if (flags & MSG_NOTIFICATION) {
			if (reset_event(buf, n, &f)) {
				resets++;
				reset_flags |= f;
			}
			continue;
		}
		bytes += (unsigned long long)n;
		if (flags & MSG_EOR)
			msgs++;
	}
	printf("sink bytes=%llu messages=%llu resets=%llu reset_flags=0x%x\n", bytes, msgs, resets,
	       reset_flags);
	return 0;
}

/* Sends one message on STREAM, retrying while the kernel answers EAGAIN. */
static void send_msg(int fd, const char *buf, size_t len, uint16_t stream) {
	char cbuf[CMSG_SPACE(sizeof(struct sctp_sndinfo))];
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr msg;
	struct cmsghdr *cm;
	struct sctp_sndinfo *si;

	memset(&msg, 0, sizeof(msg));
	memset(cbuf, 0, sizeof(cbuf));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SCTP;
	cm->cmsg_type = SCTP_SNDINFO;
	cm->cmsg_len = CMSG_LEN(sizeof(struct sctp_sndinfo));
	si = (struct sctp_sndinfo *)CMSG_DATA(cm);
	si->snd_sid = stream;
	for (;;) {
		ssize_t n = sendmsg(fd, &msg, 0);
		if (n == (ssize_t)len)
			return;
		if (n >= 0) {
			errno = EMSGSIZE;
			die("sendmsg (short)");
		}
		if (errno != EAGAIN && errno != EINTR)
			die("sendmsg");
		left_ms("sendmsg");
		usleep(10000);
	}
}

static int sender(int argc, char **argv) {
	unsigned long long bytes = 1 << 20, length = 1024, streams = 1, reset_after = 0;
	unsigned long long sent = 0, msgs = 0;
	int idata = 0, fd, i;
	struct sockaddr_storage ss;
	socklen_t sslen;
	char *buf;
	static char note[4096];

	if (argc < 2)
		usage();
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--idata"))
			idata = 1;
		else if (i + 1 >= argc)
			usage();
		else if (!strcmp(argv[i], "--bytes"))
			bytes = number(argv[++i]);
		else if (!strcmp(argv[i], "--length"))
			length = number(argv[++i]);
		else if (!strcmp(argv[i], "--streams"))
			streams = number(argv[++i]);
		else if (!strcmp(argv[i], "--reset-after"))
			reset_after = number(argv[++i]);
		else if (!strcmp(argv[i], "--timeout"))
			deadline = now() + (double)number(argv[++i]);
		else
			usage();
	}
	if (length == 0 || length > (1 << 24) || streams == 0 || streams > 65535)
		usage();

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, argv[0], &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)number(argv[1]));
		sslen = sizeof(*a);
	} else if (inet_pton(AF_INET6, argv[0], &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)number(argv[1]));
		sslen = sizeof(*a);
	} else {
		usage();
	}

	fd = socket(ss.ss_family, SOCK_STREAM, IPPROTO_SCTP);
	if (fd < 0)
		die("socket");
	endpoint_options(fd, idata, reset_after > 0, (uint16_t)streams);
	if (connect(fd, (struct sockaddr *)&ss, sslen) < 0)
		die("connect");
	{
		struct sctp_status st;
		socklen_t l = sizeof(st);
		memset(&st, 0, sizeof(st));
		if (getsockopt(fd, SOL_SCTP, SCTP_STATUS, &st, &l) < 0)
			die("SCTP_STATUS");
		printf("assoc streams=%u\n", st.sstat_outstrms);
		fflush(stdout);
		if (streams > st.sstat_outstrms)
			streams = st.sstat_outstrms;
	}

	buf = malloc(length);
	if (!buf)
		die("malloc");
	for (unsigned long long j = 0; j < length; j++)
		buf[j] = (char)('a' + j % 26);

	while (sent < bytes) {
		size_t len = bytes - sent < length ? (size_t)(bytes - sent) : (size_t)length;
		if (reset_after && msgs == reset_after) {
			struct sctp_reset_streams rs;
			uint16_t f = 0;
			memset(&rs, 0, sizeof(rs));
			rs.srs_assoc_id = SCTP_FUTURE_ASSOC;
			rs.srs_flags = SCTP_STREAM_RESET_OUTGOING;
			rs.srs_number_streams = 0; /* every outgoing stream */
			/* EAGAIN: data of the streams still queued; EINPROGRESS: an earlier request. */
			while (setsockopt(fd, SOL_SCTP, SCTP_RESET_STREAMS, &rs, sizeof(rs)) < 0) {
				if (errno != EAGAIN && errno != EINPROGRESS)
					die("SCTP_RESET_STREAMS");
				left_ms("SCTP_RESET_STREAMS");
				usleep(10000);
			}
			printf("reset: requested after %llu messages\n", msgs);
			fflush(stdout);
			for (;;) {
				int flags = 0;
				ssize_t n = read_part(fd, note, sizeof(note), &flags);
				if (n == 0) {
					errno = ECONNRESET;
					die("the association ended while waiting for the reset");
				}
				if ((flags & MSG_NOTIFICATION) && reset_event(note, n, &f))
					break;
			}
			printf("reset: flags=0x%x %s\n", f,
			       (f & SCTP_STREAM_RESET_DENIED)   ? "denied"
			       : (f & SCTP_STREAM_RESET_FAILED) ? "failed"
								: "performed");
			fflush(stdout);
			if (f & (SCTP_STREAM_RESET_DENIED | SCTP_STREAM_RESET_FAILED))
				return 1;
		}
		send_msg(fd, buf, len, (uint16_t)(msgs % streams));
		sent += len;
		msgs++;
	}
	{
		struct linger lg = {.l_onoff = 1, .l_linger = 60};
		if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
			die("SO_LINGER");
	}
	if (close(fd) < 0)
		die("close");
	printf("sent bytes=%llu messages=%llu\n", sent, msgs);
	return 0;
}

int main(int argc, char **argv) {
	deadline = now() + 300;
	if (argc >= 2 && !strcmp(argv[1], "sink"))
		return sink(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "send"))
		return sender(argc - 2, argv + 2);
	usage();
	return 2;
}
