/**
 * The post's scenario (chat-scenario.ts) with every script on Bun, then on Deno, then on a mix:
 * a Bun server, Node clients and a Deno emitter. The wire and Redis are the same whatever runs them.
 */
import { chatScenario } from "./fixtures/chat-scenario.ts";

chatScenario({ server: "bun", client: "bun", emitter: "bun" });
chatScenario({ server: "deno", client: "deno", emitter: "deno" });
chatScenario({ server: "bun", client: "node", emitter: "deno" });
