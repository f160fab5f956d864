/*
 * After 101 Switching Protocols (a WebSocket, any Upgrade): the connection
 * becomes a tunnel, and the core relays bytes between the client (through
 * its transport, so TLS too) and the module's fd both ways, a buffer per
 * direction, until both sides have closed or nothing moved for the idle
 * time.  Each side's end is passed on as a half-close.
 */
#ifndef HTTPD_TUNNEL_H
#define HTTPD_TUNNEL_H

struct conn;
struct request;

/* Turns c into a tunnel once r's 101 head is out; -1 out of memory. */
int tunnel_start(struct conn *c, struct request *r);
/* Moves what can move; 0 to wait for an event, -1 once the tunnel (and c) is closed. */
int tunnel_run(struct conn *c);

#endif
