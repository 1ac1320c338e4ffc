/**
 * The post's scenario with every script on Node (tsx); the scenario itself is in chat-scenario.ts.
 */
import { chatScenario } from "./fixtures/chat-scenario.ts";

chatScenario({ server: "node", client: "node", emitter: "node" });
