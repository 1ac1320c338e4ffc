/**
 * lib/worker/identity.ts: who each socket is, settled once at the handshake, on every worker, and
 * the room that reaches all of a user's sockets ("user:<name>", for emitter.ts --user).
 *
 * Open mode (the post's, without AUTH_SECRET or AUTH_JWKS_URL): a client names itself, in its
 * handshake (`auth: { name }`, client.ts) or later with a "name" event (the page, once its name is
 * typed), and is trusted: anyone may claim any name. Auth mode: the handshake must carry a JSON Web
 * Token (`auth: { token }`, socket.io's convention), checked here with jose; its `sub` is the user,
 * whatever name the client writes into its messages. Upstream leaves this to each application
 * (socket.io#2121, socket.io-redis-adapter#324: one room per user; auth0-socketio-jwt#98 and #38:
 * what to do at expiry): a refused handshake is a connect_error that says why, the token leaves the
 * handshake once checked (fetchSockets answers carry the handshake across Redis), and at `exp` the
 * server tells the socket and lets it go.
 */
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify } from "jose";
import type { Namespace, Socket } from "socket.io";
import { type SocketData, userNameProblem, userRoom } from "../chat.ts";
import type { AuthConfig } from "../config.ts";
import { countedLog, log } from "../log.ts";
import { countHandshakeRefused } from "./metrics.ts";
import { rateLimiter } from "./rate-limit.ts";
import { forgetMissedPackets, releaseMissedPackets } from "./recovery.ts";

/** A real token is a few hundred bytes to a few KB: anything longer is refused before any work. */
const MAX_TOKEN_LENGTH = 8192;
/** setTimeout's longest delay (about 24.8 days): a later expiry is checked again then. */
const LONGEST_TIMER_MS = 2 ** 31 - 1;

type Verify = (token: string) => Promise<{ sub?: unknown; exp?: unknown }>;

/** A refusal that is the server's trouble, not the token's: the client may try again (err.data.retry). */
class CannotCheck extends Error {}

/** One verifier per worker for all its namespaces: one key set, one fetch, one cooldown. */
const verifiers = new WeakMap<AuthConfig, Verify | undefined>();
/** One line per worker for all its namespaces. */
const refused = countedLog("refused a handshake", 60_000, log);

/**
 * The handshake's headers that may cross Redis in a fetchSockets answer (emitter.ts --list, a
 * worker's fetchSockets()): what says where a socket comes from, nothing that proves who it is.
 * Cookie and Authorization headers (a session, a password, a token sent as a header) and any
 * header this list does not name stay out. The origin check has run before (lib/worker/origins.ts,
 * on the Engine.IO request), and the request's own headers are untouched: only the handshake's
 * copy, the one the adapters send, is trimmed.
 */
const HEADERS_KEPT = ["host", "origin", "user-agent", "accept-language", "x-forwarded-for", "x-forwarded-proto", "x-real-ip"];

function headersToKeep(headers: Socket["handshake"]["headers"]): Socket["handshake"]["headers"] {
  return Object.fromEntries(HEADERS_KEPT.filter((name) => headers[name] !== undefined).map((name) => [name, headers[name]]));
}

export function identifyUsers(nsp: Namespace, auth: AuthConfig): void {
  if (!verifiers.has(auth)) verifiers.set(auth, tokenVerifier(auth));
  const verify = verifiers.get(auth);

  nsp.use((socket, next) => {
    const data = socket.data as SocketData;
    const { token, name } = socket.handshake.auth as { token?: unknown; name?: unknown };
    // The token has nothing more to do once read, and the handshake travels over Redis (fetchSockets
    // answers): out of it in both modes (a client may send one to a server in open mode).
    const { token: _read, ...rest } = socket.handshake.auth;
    socket.handshake.auth = rest;
    socket.handshake.headers = headersToKeep(socket.handshake.headers);
    if (!verify) {
      // Open mode: a name that cannot be one is left out, as if none was given.
      if (userNameProblem(name) === null) data.user = name as string;
      return next();
    }
    checkToken(verify, token).then(
      ({ user, expiresAt }) => {
        Object.assign(data, { user, verified: true, expiresAt });
        next();
      },
      (reason: Error) => {
        refused(reason.message);
        countHandshakeRefused("auth");
        forgetMissedPackets(socket.id);
        const refusal = new Error(reason instanceof CannotCheck ? reason.message : `unauthorized: ${reason.message}`);
        next(Object.assign(refusal, { data: { retry: reason instanceof CannotCheck } }));
      },
    );
  });

  nsp.on("connection", (socket: Socket) => {
    const data = socket.data as SocketData;
    releaseMissedPackets(socket); // a recovered session's, once checked (lib/worker/recovery.ts)
    if (data.user !== undefined) socket.join(userRoom(data.user));
    if (data.expiresAt !== undefined) letGoAtExpiry(socket, data.expiresAt);
    answerNameClaims(socket, verify !== undefined);
  });
}

/** jose's verification for the configured mode, or undefined in open mode. */
function tokenVerifier(auth: AuthConfig): Verify | undefined {
  if (auth.mode === "open") return undefined;
  const claims = { issuer: auth.issuer, audience: auth.audience, requiredClaims: ["sub", "exp"] };
  if (auth.mode === "secret") {
    // Imported once: jose would import raw bytes again for every token (measured: about a third
    // of the check's CPU; docs/reference/performance.md).
    const key = crypto.subtle.importKey("raw", auth.secret as Uint8Array<ArrayBuffer>, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
    return async (token) => (await jwtVerify(token, await key, { ...claims, algorithms: ["HS256"] })).payload;
  }
  // Fetched at the first token, kept, fetched again when a token names a key id it does not know
  // (at most once per AUTH_JWKS_COOLDOWN: a stream of forged key ids cannot make it fetch in a loop)
  // and when it is older than jose's cacheMaxAge (10 minutes: a key the provider withdrew stops
  // working within that). A provider out of reach then costs nothing while the keys last: the set
  // fetched before is used, and the worker says so.
  const keys = createRemoteJWKSet(auth.jwksUrl, { cooldownDuration: auth.jwksCooldown });
  const options = { ...claims, algorithms: ["RS256", "ES256"] };
  const unreachable = countedLog(`cannot fetch the signing keys at ${auth.jwksUrl.origin}${auth.jwksUrl.pathname}`);
  return async (token) => {
    try {
      return (await jwtVerify(token, keys, options)).payload;
    } catch (err) {
      if (isTokenProblem(err)) throw err;
      // The key set could not be fetched or read (no answer, not 200, not a JWKS).
      const last = keys.jwks();
      unreachable(`${(err as Error).message}${last ? "; checking with the keys fetched before" : ""}`);
      if (last) return (await jwtVerify(token, createLocalJWKSet(last), options)).payload;
      throw new CannotCheck("the server cannot check tokens right now: try again");
    }
  };
}

/** jose's errors about the token itself, as opposed to fetching the keys to check it with. */
function isTokenProblem(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && /^ERR_(JWS_|JWT_|JOSE_ALG_NOT_ALLOWED|JOSE_NOT_SUPPORTED|JWKS_NO_MATCHING_KEY|JWKS_MULTIPLE_MATCHING_KEYS)/.test(code);
}

/** The user and expiry a token proves, or an Error whose message says, in a few words, why not. */
async function checkToken(verify: Verify, token: unknown): Promise<{ user: string; expiresAt: number }> {
  if (token === undefined || token === null || token === "") throw new Error("no token (send it as auth: { token })");
  if (typeof token !== "string" || token.length > MAX_TOKEN_LENGTH) throw new Error("malformed token");
  let payload;
  try {
    payload = await verify(token);
  } catch (err) {
    if (err instanceof CannotCheck) throw err;
    throw new Error(whyRefused(err));
  }
  const problem = userNameProblem(payload.sub);
  if (problem) throw new Error(`the token's sub cannot name a user: ${problem}`);
  return { user: payload.sub as string, expiresAt: (payload.exp as number) * 1000 };
}

function whyRefused(err: unknown): string {
  const { code, claim, reason, message } = err as { code?: string; claim?: string; reason?: string; message: string };
  switch (code) {
    case "ERR_JWT_EXPIRED":
      return "token expired";
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return "bad signature";
    case "ERR_JOSE_ALG_NOT_ALLOWED":
      return "signing algorithm not allowed";
    case "ERR_JWKS_NO_MATCHING_KEY":
      return "signed with a key the server does not know";
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      if (claim === "nbf") return "token not valid yet";
      if (claim === "iss" || claim === "aud") return `token not meant for this server (${claim})`;
      return reason === "missing" ? `token without "${claim}"` : `token with an invalid "${claim}"`;
    case "ERR_JWS_INVALID":
    case "ERR_JWT_INVALID":
    case "ERR_JOSE_NOT_SUPPORTED":
      return "malformed token";
  }
  return message;
}

/**
 * At the token's expiry the socket is told ("token expired") and let go: a namespace disconnect,
 * after which socket.io-client does not reconnect by itself (a new token must be shown first).
 */
function letGoAtExpiry(socket: Socket, expiresAt: number): void {
  let timer: ReturnType<typeof setTimeout>;
  const check = () => {
    const left = expiresAt - Date.now();
    if (left > 0) return void (timer = setTimeout(check, Math.min(left, LONGEST_TIMER_MS)));
    socket.emit("token expired");
    socket.disconnect();
  };
  check();
  socket.once("disconnect", () => clearTimeout(timer));
}

/** The page names its user once it is typed; in auth mode the token already has. */
function answerNameClaims(socket: Socket, authMode: boolean): void {
  const withinLimit = rateLimiter(1);
  socket.on("name", (name: unknown, answer: unknown) => {
    const reply = typeof answer === "function" ? (answer as (error: string | null) => void) : () => {};
    if (authMode) return reply("the token names this socket's user");
    const problem = userNameProblem(name) ?? (withinLimit() ? null : "too many name changes, slow down");
    if (problem) return reply(problem);
    const data = socket.data as SocketData;
    if (data.user !== undefined) socket.leave(userRoom(data.user));
    data.user = name as string;
    socket.join(userRoom(data.user));
    reply(null);
  });
}
