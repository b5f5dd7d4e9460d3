// The heartbeat hash: SHA-256 of the RFC 8785 canonical JSON, exactly as the server's
// holobazaar.canonical.state_hash computes it.
import canonicalize from 'canonicalize';

export function hashAvailable() {
  return Boolean(globalThis.crypto && crypto.subtle);
}

export async function stateHash(state) {
  const bytes = new TextEncoder().encode(canonicalize(state));
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}
