/*
 * original_dst(fd) -> { address, port, family }
 *
 * The destination a connection had before an iptables/nftables REDIRECT or DNAT changed it:
 * getsockopt(SO_ORIGINAL_DST) (IPv4) or IP6T_SO_ORIGINAL_DST (IPv6) on the accepted socket.
 * Node exposes integer socket options only, and this one returns a struct sockaddr, hence
 * these few lines of N-API. Linux only.
 *
 * transparent_socket(family, address?, port?) -> fd
 *
 * For TPROXY (`mode: tproxy`): a non-blocking TCP socket with IP_TRANSPARENT (IPV6_TRANSPARENT)
 * set before anything else — which Node cannot do — bound to address:port when given (a
 * listener; Node then listens on the fd), unbound otherwise (an upstream connection; Node binds
 * it to the client's own address and connects). Needs CAP_NET_ADMIN (or root).
 */

#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static napi_value fail(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, "SMTPWALL_ERR_ORIGINAL_DST", msg);
  return NULL;
}

static napi_value original_dst(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "original_dst(fd): fd must be an integer");
    return NULL;
  }
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  memset(&ss, 0, sizeof ss);
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &len) != 0) {
    int err4 = errno;
    len = sizeof ss;
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &len) != 0) return fail(env, "SO_ORIGINAL_DST", err4);
  }
  char text[INET6_ADDRSTRLEN];
  int port;
  int family;
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
    port = ntohs(a->sin_port);
    family = 4;
  } else if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
    port = ntohs(a->sin6_port);
    family = 6;
  } else {
    return fail(env, "SO_ORIGINAL_DST: unexpected address family", EAFNOSUPPORT);
  }
  napi_value result, v;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, result, "address", v);
  napi_create_int32(env, port, &v);
  napi_set_named_property(env, result, "port", v);
  napi_create_int32(env, family, &v);
  napi_set_named_property(env, result, "family", v);
  return result;
}

static napi_value transparent_socket(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t family = 4, port = 0;
  char address[INET6_ADDRSTRLEN] = "";
  size_t alen = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], &family) != napi_ok) {
    napi_throw_type_error(env, NULL, "transparent_socket(family, address?, port?)");
    return NULL;
  }
  if (argc >= 3) {
    napi_valuetype t;
    napi_typeof(env, argv[1], &t);
    if (t == napi_string) napi_get_value_string_utf8(env, argv[1], address, sizeof address, &alen);
    napi_get_value_int32(env, argv[2], &port);
  }
  int af = family == 6 ? AF_INET6 : AF_INET;
  int fd = socket(af, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(env, "socket", errno);
  int one = 1;
  int rc = af == AF_INET6 ? setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof one) : setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one);
  if (rc != 0) {
    int err = errno;
    close(fd);
    return fail(env, "IP_TRANSPARENT (needs CAP_NET_ADMIN)", err);
  }
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (alen > 0) {
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    if (af == AF_INET6) {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
      a->sin6_family = AF_INET6;
      a->sin6_port = htons((uint16_t)port);
      if (inet_pton(AF_INET6, address, &a->sin6_addr) != 1) {
        close(fd);
        return fail(env, "bind: not an IPv6 address", EINVAL);
      }
      len = sizeof *a;
    } else {
      struct sockaddr_in *a = (struct sockaddr_in *)&ss;
      a->sin_family = AF_INET;
      a->sin_port = htons((uint16_t)port);
      if (inet_pton(AF_INET, address, &a->sin_addr) != 1) {
        close(fd);
        return fail(env, "bind: not an IPv4 address", EINVAL);
      }
      len = sizeof *a;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
      int err = errno;
      close(fd);
      return fail(env, "bind", err);
    }
  }
  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "originalDst", NAPI_AUTO_LENGTH, original_dst, NULL, &fn);
  napi_set_named_property(env, exports, "originalDst", fn);
  napi_create_function(env, "transparentSocket", NAPI_AUTO_LENGTH, transparent_socket, NULL, &fn);
  napi_set_named_property(env, exports, "transparentSocket", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
