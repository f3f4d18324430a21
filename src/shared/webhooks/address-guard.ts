import { BlockList, isIP } from 'node:net';

/**
 * The SSRF guard of webhook deliveries: an endpoint may only make payonce connect to public
 * addresses, unless an operator lists a host or address in WEBHOOK_ALLOWED_HOSTS. Registration
 * checks the URL without connecting or resolving (`checkWebhookUrl`); the dispatcher resolves the
 * host before every connection and refuses if any address it gets is not allowed
 * (`checkResolvedAddresses`), then connects to the very address it checked.
 */

/** Addresses no webhook may reach: private, loopback, link-local, and every other non-public range. */
const NOT_PUBLIC = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata services live here)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and the broadcast address
] as const) {
  NOT_PUBLIC.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 96], // unspecified, loopback, and the deprecated IPv4-compatible addresses
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
  ['2001:db8::', 32], // documentation
  ['100::', 64], // discard
] as const) {
  NOT_PUBLIC.addSubnet(network, prefix, 'ipv6');
}

/** IPv6 forms that carry an IPv4 address: IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d). */
const EMBEDDED_IPV4 = /^(?:::ffff:|64:ff9b::)(\d{1,3}(?:\.\d{1,3}){3})$/i;
const EMBEDDED_IPV4_HEX = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i;

/** The IPv4 address inside an IPv4-mapped or NAT64 IPv6 address, if it is one. */
function embeddedIpv4(address: string): string | undefined {
  const dotted = EMBEDDED_IPV4.exec(address);
  if (dotted) return dotted[1];
  const hex = EMBEDDED_IPV4_HEX.exec(address);
  if (!hex) return undefined;
  const high = parseInt(hex[1]!, 16);
  const low = parseInt(hex[2]!, 16);
  return [high >> 8, high & 255, low >> 8, low & 255].join('.');
}

/** Lower-cased, without IPv6 brackets: how hosts are compared with WEBHOOK_ALLOWED_HOSTS. */
export const normalizeHost = (host: string) =>
  host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');

/** An IPv6 address in its one compressed form (the URL parser's), so the patterns above see every spelling. */
const canonicalIpv6 = (address: string) => new URL(`http://[${address}]/`).hostname.slice(1, -1);

/** Whether an IP address is public (none of the ranges above, also when embedded in IPv6). */
export function isPublicAddress(address: string): boolean {
  let host = normalizeHost(address);
  const family = isIP(host);
  if (family === 0) return false;
  if (family === 6) host = canonicalIpv6(host);
  const inner = family === 6 ? embeddedIpv4(host) : undefined;
  if (inner !== undefined) return isPublicAddress(inner);
  return !NOT_PUBLIC.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

/** Why a webhook URL or address is refused; null when it is allowed. */
type Refusal = string | null;

/**
 * Whether a webhook URL may be registered, without resolving or connecting: http(s) only, no
 * credentials, and a host that is not a non-public IP literal (unless allowed). A host name is
 * checked again, resolved, before every delivery.
 */
export function checkWebhookUrl(url: string, allowedHosts: readonly string[]): Refusal {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'not a URL';
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return 'only http and https URLs';
  if (parsed.username || parsed.password) return 'no credentials in the URL';
  const host = normalizeHost(parsed.hostname);
  if (allowedHosts.includes(host)) return null;
  if (isIP(host) !== 0 && !isPublicAddress(host)) return `${host} is not a public address`;
  // A name that is private by convention never resolves anywhere public.
  if (host === 'localhost' || host.endsWith('.localhost')) return `${host} is not a public host`;
  return null;
}

/**
 * Whether the dispatcher may connect to `host` at `addresses` (what resolving it gave): every
 * address must be public or allowed, or the URL's host itself allowed. Refusing when any one is
 * not keeps a name that resolves to a mix from reaching inside.
 */
export function checkResolvedAddresses(
  host: string,
  addresses: readonly string[],
  allowedHosts: readonly string[],
): Refusal {
  if (allowedHosts.includes(normalizeHost(host))) return null;
  if (addresses.length === 0) return `${host} resolved to no address`;
  const refused = addresses.find(
    (address) => !isPublicAddress(address) && !allowedHosts.includes(normalizeHost(address)),
  );
  return refused === undefined ? null : `${host} resolves to ${refused}, which is not a public address`;
}
