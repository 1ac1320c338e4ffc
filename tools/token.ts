/**
 * tools/token.ts: `npm run token -- NAME [--ttl 1h]`. Mints a token for trying auth mode out: an
 * HS256 JSON Web Token whose `sub` is NAME, signed with AUTH_SECRET, valid for --ttl (1h), with
 * AUTH_ISSUER and AUTH_AUDIENCE as `iss` and `aud` when they are set. It prints the token alone,
 * so that `AUTH_TOKEN=$(npm run -s token -- alice) npx tsx client.ts alice` works.
 *
 * In production your backend mints the tokens (or an identity provider does, AUTH_JWKS_URL), after
 * it has checked who the user is: whoever holds AUTH_SECRET can be anyone (docs/learn/users.md).
 */
import { parseArgs } from "node:util";
import { SignJWT } from "jose";
import { userNameProblem } from "../lib/chat.ts";
import { readAuthSecret } from "../lib/config.ts";
import { onUncaught, UsageError } from "../lib/failures.ts";

const USAGE = "usage: npm run token -- NAME [--ttl 1h]   (AUTH_SECRET: the server's; --ttl in s, m, h or d)";
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

onUncaught((failure) => {
  console.error(failure.line);
  process.exit(failure.code);
});

const { values, positionals } = (() => {
  try {
    return parseArgs({ allowPositionals: true, options: { ttl: { type: "string", default: "1h" } } });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split(". ")[0]}; ${USAGE}`);
  }
})();
const [name, ...extra] = positionals;
if (name === undefined || extra.length > 0) throw new UsageError(USAGE);
const problem = userNameProblem(name);
if (problem) throw new UsageError(`NAME: ${problem}`);
const ttl = /^(\d{1,9})([smhd])$/.exec(values.ttl);
if (!ttl || Number(ttl[1]) === 0) throw new UsageError(`--ttl takes a duration such as 30s, 15m, 1h or 7d, got "${values.ttl}"`);
const secret = readAuthSecret();
if (!secret) throw new UsageError("AUTH_SECRET is not set: give it the server's value");

const now = Math.floor(Date.now() / 1000);
const token = new SignJWT({})
  .setProtectedHeader({ alg: "HS256", typ: "JWT" })
  .setSubject(name)
  .setIssuedAt(now)
  .setExpirationTime(now + Number(ttl[1]) * UNIT_SECONDS[ttl[2]!]!);
if (process.env.AUTH_ISSUER) token.setIssuer(process.env.AUTH_ISSUER);
if (process.env.AUTH_AUDIENCE) token.setAudience(process.env.AUTH_AUDIENCE);
console.log(await token.sign(secret));
