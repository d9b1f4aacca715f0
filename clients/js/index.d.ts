// Types for @socialbroker/broker-client (index.js).

export interface ClientOptions {
  /** The broker's issuer, such as "https://auth.example.com" (no trailing slash needed). */
  issuer: string;
  /** The fetch used for the broker and for Client.fetch; default globalThis.fetch. */
  fetch?: (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;
  /** How long to wait for the cross-tab refresh lock before refreshing anyway; default 10000. */
  lockTimeoutMs?: number;
  /** Refresh this long before the token expires (at most half its lifetime); default 30000. */
  refreshMarginMs?: number;
}

/** A change shared by every tab of the origin. */
export type ChangeEvent = { type: 'signin' } | { type: 'signout' };

export interface Client {
  /** A fresh access token, refreshed first if it is about to expire; null when signed out. */
  getAccessToken(): Promise<string | null>;
  /** fetch with Authorization: Bearer; after a 401 it refreshes once and retries once. */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** Navigates to the broker's login for provider (its login page without one), back to returnTo (default: this page). */
  login(provider?: string, returnTo?: string): void;
  /** Ends this session (every session of the user with all: true) and signs every tab out. */
  logout(options?: { all?: boolean }): Promise<void>;
  /** Calls listener on sign-in and sign-out, in whichever tab they happen; returns the unsubscribe function. */
  onChange(listener: (event: ChangeEvent) => void): () => void;
  /** Stops listening to other tabs and to page events. */
  close(): void;
}

export function createClient(options: ClientOptions): Client;
