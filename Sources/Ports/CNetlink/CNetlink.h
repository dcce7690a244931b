// libnl-3 and libnl-route-3 (Debian libnl-3-dev, libnl-route-3-dev): the
// interface facts and link-change events of the generic backend.
#include <netlink/netlink.h>
#include <netlink/msg.h>
#include <netlink/socket.h>
#include <netlink/cache.h>
#include <netlink/route/link.h>
#include <netlink/route/classifier.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/tc.h>
#include <linux/rtnetlink.h>
#include <linux/if.h>
