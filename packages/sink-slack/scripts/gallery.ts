/**
 * Writes every event type's message to gallery/messages.json: one Block Kit
 * payload (`{ "blocks": [...] }`) per type, keyed by type, built from the
 * spec's example of each type. Paste any payload into Slack's Block Kit Builder
 * (https://app.slack.com/block-kit-builder) to see it as Slack shows it.
 *
 *   node --conditions=@workos-relay/source scripts/gallery.ts [--check]
 */
import { readFileSync, writeFileSync } from "node:fs"
import type { Event } from "@workos-relay/core"
import { examples } from "@workos-relay/core/Examples"
import * as Blocks from "../src/Blocks.ts"

const target = new URL("../gallery/messages.json", import.meta.url)

const unknownEvent: Event.Any = {
  object: "event",
  id: "event_01JZX0000000000000000000AB",
  event: "widget.assembled",
  data: {
    widget_id: "widget_01JZX0000000000000000000",
    name: "Sprocket",
    organization_id: "org_01EHWNCE74X7JSDV0X3SZ3KJNY"
  },
  created_at: "2026-01-15T12:00:00.000Z"
}

const gallery: Record<string, { blocks: ReadonlyArray<Blocks.Block> }> = {}
for (const event of [...(Object.values(examples) as ReadonlyArray<Event.Any>), unknownEvent]) {
  const { blocks } = Blocks.render(event, { dashboardUrl: "https://dashboard.workos.com" })
  gallery[event.event] = { blocks }
}
const text = `${JSON.stringify(gallery, null, 2)}\n`

if (process.argv.includes("--check")) {
  if (readFileSync(target, "utf8") !== text) {
    console.error("gallery/messages.json is out of date: run `pnpm gallery`")
    process.exit(1)
  }
} else {
  writeFileSync(target, text)
  console.log(`wrote ${Object.keys(gallery).length} messages to gallery/messages.json`)
}
