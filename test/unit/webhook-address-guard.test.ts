import { describe, expect, it } from 'vitest';
import { checkResolvedAddresses, checkWebhookUrl, isPublicAddress } from '../../src/shared/webhooks/address-guard.js';

/** The SSRF guard of webhooks: pure functions, no socket and no lookup. */
describe('isPublicAddress', () => {
  it.each([
    // IPv4: private, loopback, link-local (cloud metadata), CGNAT, this network, multicast, reserved, documentation
    '10.0.0.1',
    '10.255.255.255',
    '172.16.0.1',
    '172.31.255.254',
    '192.168.1.10',
    '127.0.0.1',
    '127.0.0.2',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '240.0.0.1',
    '255.255.255.255',
    '192.0.2.5',
    '198.18.0.1',
    // IPv6: loopback, unspecified, unique local, link-local, multicast, documentation
    '::1',
    '[::1]',
    '0:0:0:0:0:0:0:1',
    '::',
    'fd12:3456:789a::1',
    'fc00::1',
    'fe80::1',
    'ff02::1',
    '2001:db8::1',
    // IPv4 inside IPv6: mapped, NAT64, deprecated compatible, in every spelling
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '0:0:0:0:0:ffff:a00:1',
    '64:ff9b::a9fe:a9fe',
    '::127.0.0.1',
  ])('refuses %s', (address) => {
    expect(isPublicAddress(address)).toBe(false);
  });

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])(
    'accepts %s',
    (address) => {
      expect(isPublicAddress(address)).toBe(true);
    },
  );

  it('is no address at all for a name', () => {
    expect(isPublicAddress('example.com')).toBe(false);
  });
});

describe('checkWebhookUrl (registration: no lookup, no connection)', () => {
  it('takes a public https or http URL with a name or a public address', () => {
    for (const url of [
      'https://hooks.example.com/payonce',
      'http://93.184.216.34:8080/h',
      'https://[2606:4700::1111]/x',
    ]) {
      expect(checkWebhookUrl(url, []), url).toBeNull();
    }
  });

  it('refuses other schemes, credentials, and hosts that are not public', () => {
    expect(checkWebhookUrl('ftp://example.com/x', [])).toMatch(/only http and https/);
    expect(checkWebhookUrl('file:///etc/passwd', [])).toMatch(/only http and https/);
    expect(checkWebhookUrl('not a url', [])).toBe('not a URL');
    expect(checkWebhookUrl('https://user:pass@example.com/', [])).toMatch(/credentials/);
    for (const url of [
      'http://127.0.0.1/',
      'http://10.1.2.3/',
      'http://169.254.169.254/latest/meta-data/',
      'http://[::1]/',
      'http://[fe80::1]/',
      'http://localhost:8080/',
      'http://api.localhost/',
      // Spellings the URL parser turns into 127.0.0.1.
      'http://2130706433/',
      'http://0x7f000001/',
      'http://127.1/',
    ]) {
      expect(checkWebhookUrl(url, []), url).toMatch(/not a public/);
    }
  });

  it('lets through exactly the hosts and addresses WEBHOOK_ALLOWED_HOSTS names', () => {
    const allowed = ['127.0.0.1', 'hooks.internal'];
    expect(checkWebhookUrl('http://127.0.0.1:4000/h', allowed)).toBeNull();
    expect(checkWebhookUrl('http://HOOKS.internal/h', allowed)).toBeNull();
    expect(checkWebhookUrl('http://127.0.0.2:4000/h', allowed)).toMatch(/not a public/);
    expect(checkWebhookUrl('http://[::1]:4000/h', allowed)).toMatch(/not a public/);
    expect(checkWebhookUrl('http://[::1]:4000/h', ['::1'])).toBeNull();
  });
});

describe('checkResolvedAddresses (before every connection)', () => {
  it('refuses a name that resolves to a private address, also among public ones', () => {
    expect(checkResolvedAddresses('evil.example', ['10.0.0.5'], [])).toMatch(/resolves to 10.0.0.5/);
    expect(checkResolvedAddresses('mixed.example', ['93.184.216.34', '169.254.169.254'], [])).toMatch(
      /169.254.169.254/,
    );
    expect(checkResolvedAddresses('six.example', ['::ffff:192.168.0.1'], [])).toMatch(/not a public address/);
    expect(checkResolvedAddresses('nothing.example', [], [])).toMatch(/no address/);
  });

  it('accepts public addresses, and allowed hosts or addresses', () => {
    expect(checkResolvedAddresses('hooks.example.com', ['93.184.216.34', '2606:4700::1111'], [])).toBeNull();
    expect(checkResolvedAddresses('hooks.internal', ['10.0.0.5'], ['hooks.internal'])).toBeNull();
    expect(checkResolvedAddresses('receiver.test', ['127.0.0.1'], ['127.0.0.1'])).toBeNull();
    expect(checkResolvedAddresses('receiver.test', ['127.0.0.1', '::1'], ['127.0.0.1'])).toMatch(/::1/);
  });
});
