/**
 * The console in a real Chromium (Debian's `chromium`, driven by playwright-core):
 * what an operator sees and clicks, against a real runner. Screenshots of each page
 * are written to $TMPDIR/workos-relay-console (not committed) for a person to look at.
 *
 * Without /usr/bin/chromium (or CHROMIUM_PATH) the test fails; set
 * RELAY_SKIP_BROWSER_TESTS=1 to skip it on a machine without one (never in CI).
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { DatabaseSync } from "node:sqlite"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { type Browser, chromium } from "playwright-core"
import { startConsoleRelay } from "./consoleRelay.ts"
import { recorded, tempDir, waitUntil } from "./helpers.ts"

const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"
const skip = process.env.RELAY_SKIP_BROWSER_TESTS === "1" && !Fs.existsSync(executablePath)
const screenshots = Path.join(Os.tmpdir(), "workos-relay-console")

const launch = Effect.acquireRelease(
  Effect.promise(async () => {
    if (!Fs.existsSync(executablePath))
      throw new Error(
        `no Chromium at ${executablePath}: install it (apt-get install -y chromium) or set CHROMIUM_PATH; RELAY_SKIP_BROWSER_TESTS=1 skips this test locally`
      )
    // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    return chromium.launch({ executablePath, args: ["--no-sandbox"] })
  }),
  (browser: Browser) => Effect.promise(() => browser.close())
)

const count = (ids: ReadonlyArray<string>, id: string) => ids.filter((x) => x === id).length

describe.skipIf(skip)("console in a browser", () => {
  it.live(
    "overview shows each sink and updates as events flow; a dead letter is inspected, retried (delivered once) and dropped, each after a confirmation",
    () =>
      Effect.gen(function* () {
        const relay = yield* startConsoleRelay()
        const browser = yield* launch
        Fs.mkdirSync(screenshots, { recursive: true })
        yield* Effect.promise(async () => {
          const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
          const errors: Array<string> = []
          page.on("pageerror", (e) => errors.push(e.message))
          // Nothing but the runner: no request leaves for another host.
          const elsewhere: Array<string> = []
          page.on("request", (r) => {
            if (!r.url().startsWith(relay.base)) elsewhere.push(r.url())
          })
          await page.goto(`${relay.base}/console`)

          // -- overview: both sinks, their state; live: new events show up
          const row = (sink: string) => page.locator(`#sinks tr[data-sink="${sink}"]`)
          await expect.poll(() => row("all").textContent()).toContain("running")
          expect(await row("switch").textContent()).toContain("running")
          expect(await row("switch").locator("td").nth(5).textContent()).toBe(
            String(relay.rejected.length)
          )
          expect(await row("all").locator("td").nth(4).textContent()).toBe("222")
          expect(await page.locator("#source").textContent()).toMatch(
            /requests a minute \(budget\)[1-9]\d* of 4800/
          )
          relay.standIn.appendGenerated(5)
          await expect
            .poll(() => row("all").locator("td").nth(4).textContent(), { timeout: 20_000 })
            .toBe("227")
          await page.screenshot({ path: Path.join(screenshots, "overview.png"), fullPage: true })

          // -- dead letters: filter, inspect the event and its error side by side
          await page.click('nav a[data-page="dead-letters"]')
          const rows = page.locator("#dead-letters tr[data-id]")
          await expect.poll(() => rows.count()).toBe(relay.rejected.length)
          await page.fill('input[name="type"]', "user.created")
          await page.click('form.filters button[type="submit"]')
          await expect.poll(() => rows.count()).toBe(2)
          const first = rows.nth(0)
          const id = Number(await first.getAttribute("data-id"))
          const eventId = (await first.locator("td").nth(4).textContent())!
          await first.locator("td").nth(1).locator("a").click()
          expect(await page.locator("#event-json").textContent()).toContain(`"id": "${eventId}"`)
          expect(await page.locator("#event-error").textContent()).toContain(
            "switched off for user.created"
          )
          await page.screenshot({
            path: Path.join(screenshots, "dead-letters.png"),
            fullPage: true
          })

          // -- retry it: the confirmation first (cancel changes nothing), then delivered
          Fs.writeFileSync(relay.rejectFile, "organization.created")
          await page.click("text=Retry this one")
          await page.click('#confirm button[value="cancel"]')
          expect(await rows.count()).toBe(2)
          expect(count(recorded(relay.logs.switch), eventId)).toBe(0)
          await page.click("text=Retry this one")
          expect(await page.locator("#confirm-text").textContent()).toContain(`${id}`)
          await page.click("#confirm-ok")
          await expect.poll(() => rows.count()).toBe(1)
          expect(await page.locator(`#dead-letters tr[data-id="${id}"]`).count()).toBe(0)
          expect(await page.locator("#status").textContent()).toContain("1 delivered")
          expect(count(recorded(relay.logs.switch), eventId)).toBe(1)

          // -- drop the other one, chosen by its checkbox: gone, never delivered
          const other = rows.nth(0)
          const otherEvent = (await other.locator("td").nth(4).textContent())!
          await other.locator('input[type="checkbox"]').check()
          await page.click("text=Drop selected (1)")
          await page.click("#confirm-ok")
          await expect.poll(() => rows.count()).toBe(0)
          expect(count(recorded(relay.logs.switch), otherEvent)).toBe(0)
          // The organization.created ones are still there.
          await page.fill('input[name="type"]', "")
          await page.click('form.filters button[type="submit"]')
          await expect.poll(() => rows.count()).toBe(2)
          expect(errors).toEqual([])
          expect(elsewhere).toEqual([])
        })
        yield* relay.stop
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "tap: the events a sink passes, live, as they are read; one opens as JSON; the event catalogue",
    () =>
      Effect.gen(function* () {
        const relay = yield* startConsoleRelay()
        const browser = yield* launch
        Fs.mkdirSync(screenshots, { recursive: true })
        yield* Effect.promise(async () => {
          const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
          const errors: Array<string> = []
          page.on("pageerror", (e) => errors.push(e.message))
          await page.goto(`${relay.base}/console#/tap`)
          await page.selectOption('select[name="sink"]', "switch")
          await page.fill('input[name="events"]', "user.*")
          await page.click('form.filters button[type="submit"]')
          await expect.poll(() => page.locator("#status").textContent()).toBe("tapping switch")
          const added = relay.standIn.appendGenerated(111)
          const users = added.filter((e) => e.event.startsWith("user.")).map((e) => e.id)
          const rows = page.locator("#tap tbody tr")
          await expect.poll(() => rows.count(), { timeout: 20_000 }).toBe(users.length)
          // Newest first: the page's rows are the events in reverse.
          const shown = await rows.evaluateAll((trs) =>
            trs.map((tr) => tr.getAttribute("data-event"))
          )
          expect(shown).toEqual([...users].reverse())
          await rows.nth(0).locator("a").click()
          expect(await page.locator("#tap-event").textContent()).toContain(
            `"id": "${users.at(-1)}"`
          )
          await page.screenshot({ path: Path.join(screenshots, "tap.png"), fullPage: true })

          // The catalogue: who takes a type, and its example.
          await page.click('nav a[data-page="catalogue"]')
          await page.fill('input[name="filter"]', "user.created")
          const type = page.locator('#catalogue tr[data-type="user.created"]')
          expect(await type.locator("td").nth(1).textContent()).toBe("all, switch")
          await type.locator("a").click()
          expect(await page.locator("#example").textContent()).toContain('"event": "user.created"')
          await page.screenshot({ path: Path.join(screenshots, "catalogue.png"), fullPage: true })
          expect(errors).toEqual([])
        })
        yield* relay.stop
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "with a token: the page asks for it; a wrong one shows nothing, the right one the sinks",
    () =>
      Effect.gen(function* () {
        const relay = yield* startConsoleRelay({ token: "open-sesame" })
        const browser = yield* launch
        yield* Effect.promise(async () => {
          const page = await browser.newPage()
          const asked: Array<string> = []
          let answer = "wrong"
          page.on("dialog", (dialog) => {
            asked.push(dialog.message())
            void dialog.accept(answer)
            answer = "open-sesame"
          })
          await page.goto(`${relay.base}/console`)
          await expect
            .poll(() => page.locator('#sinks tr[data-sink="switch"]').count(), { timeout: 20_000 })
            .toBe(1)
          // Asked twice: the wrong token was refused, the right one kept for the tab.
          expect(asked).toHaveLength(2)
          expect(asked[0]).toContain("token")
          await page.click('nav a[data-page="dead-letters"]')
          await expect
            .poll(() => page.locator("#dead-letters tr[data-id]").count())
            .toBe(relay.rejected.length)
          expect(asked).toHaveLength(2)
        })
        yield* relay.stop
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "audit log: a query's rows are the store's, paged both ways, each opens as JSON; verify OK, then names the record changed in the file",
    () =>
      Effect.gen(function* () {
        const sqlite = Path.join(tempDir("relay-console-audit-"), "audit.db")
        const relay = yield* startConsoleRelay({}, "127.0.0.1:0", {
          audit: { type: "audit-log", path: sqlite }
        })
        yield* waitUntil(
          "the audit log written",
          () => relay.metrics.sink("audit").delivered === relay.standIn.size()
        )
        // The store's own answer, read with SQLite: ids newest first.
        const stored = (where = "") => {
          const db = new DatabaseSync(sqlite, { readOnly: true })
          try {
            return db
              .prepare(`SELECT id FROM audit_records ${where} ORDER BY created_at DESC, seq DESC`)
              .all()
              .map((r) => String(r.id))
          } finally {
            db.close()
          }
        }
        const browser = yield* launch
        Fs.mkdirSync(screenshots, { recursive: true })
        yield* Effect.promise(async () => {
          const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
          const errors: Array<string> = []
          page.on("pageerror", (e) => errors.push(e.message))
          const elsewhere: Array<string> = []
          page.on("request", (r) => {
            if (!r.url().startsWith(relay.base)) elsewhere.push(r.url())
          })
          await page.goto(`${relay.base}/console`)
          // The page's link shows: this relay has an audit-log sink.
          const link = page.locator('nav a[data-page="audit"]')
          await expect.poll(() => link.isVisible()).toBe(true)
          await link.click()
          const rows = page.locator("#audit tbody tr[data-id]")
          const shown = () => rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-id")))
          // Unfiltered, 50 a page: the newest 50 of the store.
          const all = stored()
          expect(all).toHaveLength(relay.standIn.size())
          await expect.poll(shown).toEqual(all.slice(0, 50))

          // Filtered, 10 a page: Older to the end covers the store's matches once; Newer goes back.
          await page.selectOption('select[name="limit"]', "10")
          await page.fill('input[name="type"]', "dsync.*, user.*")
          await page.click('#audit-query button[type="submit"]')
          const want = stored("WHERE type LIKE 'dsync.%' OR type LIKE 'user.%'")
          expect(want.length).toBeGreaterThan(20)
          await expect.poll(shown).toEqual(want.slice(0, 10))
          const seen: Array<string | null> = [...(await shown())]
          for (let from = 10; from < want.length; from += 10) {
            await page.click("#audit-older")
            await expect.poll(shown).toEqual(want.slice(from, from + 10))
            seen.push(...(await shown()))
          }
          expect(seen).toEqual(want)
          expect(await page.locator("#audit-older").isDisabled()).toBe(true)
          await page.click("#audit-newer")
          await expect.poll(shown).toEqual(want.slice(10, 20))
          await page.click("#audit-newer")
          await expect.poll(shown).toEqual(want.slice(0, 10))
          expect(await page.locator("#audit-newer").isDisabled()).toBe(true)

          // A row opens as its JSON: the event as WorkOS sent it, its place in the chain.
          await rows.nth(0).locator("a").click()
          const json = page.locator("#audit tbody tr.json").nth(0)
          expect(await json.isVisible()).toBe(true)
          const record = JSON.parse((await json.textContent())!)
          expect(record.id).toBe(want[0])
          expect(record.event.id).toBe(want[0])
          expect(record.hash).toMatch(/^[0-9a-f]{64}$/)

          // Verify: OK, every record counted.
          await page.click("#audit-verify-button")
          const verdict = page.locator("#audit-verify")
          await expect
            .poll(() => verdict.textContent())
            .toContain(`OK: ${relay.standIn.size()} record(s) verified from the start`)
          await page.screenshot({ path: Path.join(screenshots, "audit.png"), fullPage: true })

          // Someone changes a kept record in the file: verify names it and says why.
          const victim = want[3]!
          const db = new DatabaseSync(sqlite)
          db.exec("PRAGMA busy_timeout = 10000")
          const seq = Number(
            (
              db.prepare("SELECT seq FROM audit_records WHERE id = ?").get(victim) as {
                seq: number
              }
            ).seq
          )
          const changed = db
            .prepare("UPDATE audit_records SET organization_id = 'org_mallory' WHERE id = ?")
            .run(victim)
          db.close()
          expect(changed.changes).toBe(1)
          await page.click("#audit-verify-button")
          await expect
            .poll(() => verdict.textContent())
            .toBe(
              `FAILED (modified): record #${seq} (event ${victim}) was modified: its content no longer matches its hash`
            )
          expect(await verdict.getAttribute("class")).toBe("alarm")
          await page.screenshot({
            path: Path.join(screenshots, "audit-tampered.png"),
            fullPage: true
          })
          expect(errors).toEqual([])
          expect(elsewhere).toEqual([])
        })
        yield* relay.stop
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "audit log: without an audit-log sink there is no link, and the page says how to have one",
    () =>
      Effect.gen(function* () {
        const relay = yield* startConsoleRelay()
        const browser = yield* launch
        yield* Effect.promise(async () => {
          const page = await browser.newPage()
          await page.goto(`${relay.base}/console`)
          await expect.poll(() => page.locator('#sinks tr[data-sink="all"]').count()).toBe(1)
          expect(await page.locator('nav a[data-page="audit"]').isVisible()).toBe(false)
          await page.goto(`${relay.base}/console#/audit`)
          await expect
            .poll(() => page.locator("#audit-missing").textContent())
            .toContain("No audit-log sink is configured: add a sink of type audit-log")
        })
        yield* relay.stop
      }).pipe(Effect.scoped),
    120_000
  )
})
