// The operator console's pages: plain ES modules, no framework, no build step, no
// asset from the internet. Everything shown is built with DOM nodes and textContent
// (an event's payload is untrusted input). The JSON API is described in src/console/Api.ts.

const main = document.getElementById("main")
const status = document.getElementById("status")

/** An element: attributes (on* are listeners) and children (strings become text). */
const h = (tag, attrs = {}, ...children) => {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v)
    else el.setAttribute(k, v === true ? "" : String(v))
  }
  for (const c of children.flat()) if (c != null) el.append(c instanceof Node ? c : String(c))
  return el
}

// -- the API, with the bearer token when the console asks for one

const token = () => sessionStorage.getItem("relay-console-token")

/** A call to the API; on a 401 it asks for the token (unless `ask` is false) and tries again. */
const call = async (path, body, ask = true) => {
  const headers = {}
  if (token()) headers.authorization = `Bearer ${token()}`
  if (body !== undefined) headers["content-type"] = "application/json"
  const response = await fetch(`/console/api/${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers,
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const json = await response.json().catch(() => ({ error: `HTTP ${response.status}` }))
  if (response.status === 401 && ask) {
    const given = prompt("This console needs its token (console.token):")
    if (given) {
      sessionStorage.setItem("relay-console-token", given)
      return call(path, body)
    }
  }
  if (!response.ok) throw new Error(json.error ?? `HTTP ${response.status}`)
  return json
}

const confirmDialog = (text) =>
  new Promise((resolve) => {
    const dialog = document.getElementById("confirm")
    document.getElementById("confirm-text").textContent = text
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true })
    dialog.showModal()
  })

// -- formatting

const duration = (ms) =>
  ms < 1000
    ? `${Math.round(ms)} ms`
    : ms < 60_000
      ? `${(ms / 1000).toFixed(1)} s`
      : ms < 3_600_000
        ? `${(ms / 60_000).toFixed(1)} min`
        : `${(ms / 3_600_000).toFixed(1)} h`
const percent = (ratio) => `${(ratio * 100).toFixed(ratio < 0.1 ? 1 : 0)}%`
const time = (ms) => new Date(ms).toISOString().replace("T", " ").slice(0, 19)

/** events/s as a small line chart (inline SVG), newest on the right. */
const sparkline = (values, interval) => {
  const width = 160
  const height = 32
  const ns = "http://www.w3.org/2000/svg"
  const svg = document.createElementNS(ns, "svg")
  svg.setAttribute("class", "spark")
  svg.setAttribute("width", width)
  svg.setAttribute("height", height)
  const max = Math.max(1, ...values)
  const step = width / Math.max(1, values.length - 1)
  const points = values.map(
    (v, i) => `${(i * step).toFixed(1)},${(height - 2 - (v / max) * (height - 4)).toFixed(1)}`
  )
  const line = document.createElementNS(ns, "polyline")
  line.setAttribute("points", points.join(" "))
  line.setAttribute("fill", "none")
  line.setAttribute("stroke", "#3b6fd8")
  line.setAttribute("stroke-width", "1.5")
  svg.append(line)
  const title = document.createElementNS(ns, "title")
  title.textContent = `events/s over the last ${Math.round((values.length * interval) / 60)} min, max ${max.toFixed(1)}`
  svg.append(title)
  return svg
}

// -- overview

const renderOverview = (o) => {
  const s = o.source
  const alarms = []
  if (s.gaps > 0) alarms.push(`${s.gaps} possible gap(s): ${s.lastGap ?? ""}`)
  if (s.retentionUsed >= 0.5)
    alarms.push(`a sink has used ${percent(s.retentionUsed)} of WorkOS's retention`)
  const drift = Object.entries(s.specMismatches)
  if (drift.length > 0)
    alarms.push(`spec drift: ${drift.map(([t, n]) => `${t} (${n})`).join(", ")}`)
  const fact = (label, value, cls) =>
    h("div", {}, h("span", {}, label), h("b", { class: cls }, value))
  return [
    h(
      "section",
      { id: "source" },
      h("h2", {}, "Source"),
      h(
        "div",
        { class: "facts" },
        fact("events fetched", s.fetched),
        o.cluster === undefined
          ? fact("lease", s.leaseHeld ? "held" : "not held (standby)", s.leaseHeld ? "ok" : "alarm")
          : fact("runner", o.cluster.runner),
        fact("ready", s.ready ? "yes" : "no", s.ready ? "ok" : "alarm"),
        fact(
          "retention used (worst sink)",
          percent(s.retentionUsed),
          s.retentionUsed >= 0.5 ? "alarm" : undefined
        ),
        s.budget === null
          ? undefined
          : fact(
              "requests a minute (budget)",
              `${s.budget.perMinute} of ${s.budget.maxPerMinute}${s.budget.throttled > 0 ? `, ${s.budget.throttled} throttled` : ""}`,
              s.budget.perMinute >= 0.8 * s.budget.maxPerMinute ? "alarm" : undefined
            ),
        fact("up for", duration(o.now - o.startedAt))
      ),
      alarms.length === 0
        ? h("p", { class: "ok" }, "no alarms (retention, gaps, spec drift)")
        : h(
            "ul",
            { class: "alarm" },
            alarms.map((a) => h("li", {}, a))
          )
    ),
    o.cluster === undefined ? undefined : renderCluster(o),
    h(
      "section",
      {},
      h("h2", {}, o.cluster === undefined ? "Sinks" : "Sinks of the units running here"),
      o.cluster !== undefined && o.sinks.length === 0
        ? h("p", { class: "muted" }, "no unit runs on this runner now: it is a spare")
        : undefined,
      h(
        "table",
        { id: "sinks" },
        h(
          "tr",
          {},
          [
            "sink",
            "state",
            "lag",
            "events/s",
            "delivered",
            "dead letters",
            "checkpoint",
            "last failure"
          ].map((c) => h("th", {}, c))
        ),
        o.sinks.map((k) =>
          h(
            "tr",
            { "data-sink": k.name },
            h("td", {}, h("b", {}, k.name)),
            h("td", { class: `state-${k.state}` }, k.state),
            h("td", {}, `${k.lagEvents} ev · ${duration(k.lagMs)}`),
            h("td", {}, sparkline(k.rate, o.rateInterval), " ", (k.rate.at(-1) ?? 0).toFixed(1)),
            h("td", {}, k.delivered),
            h(
              "td",
              {},
              k.deadLetters > 0
                ? h(
                    "a",
                    { href: `#/dead-letters?sink=${encodeURIComponent(k.name)}` },
                    k.deadLetters
                  )
                : "0"
            ),
            h(
              "td",
              { class: "muted" },
              k.checkpointAt === null ? "—" : `${duration(o.now - k.checkpointAt)} ago`
            ),
            h("td", { class: k.error ? "alarm" : "muted" }, k.error ?? "—")
          )
        )
      )
    )
  ]
}

/** Cluster mode: the runners, which unit each runs, and each unit's holder and lag. */
const renderCluster = (o) => {
  const c = o.cluster
  return h(
    "section",
    { id: "cluster" },
    h("h2", {}, `Cluster: ${c.runners.filter((r) => r.state !== "gone").length} runner(s)`),
    h(
      "table",
      { id: "runners" },
      h(
        "tr",
        {},
        ["runner", "state", "heartbeat", "runs"].map((x) => h("th", {}, x))
      ),
      c.runners.map((r) =>
        h(
          "tr",
          { "data-runner": r.address },
          h("td", {}, h("b", {}, r.address), r.address === c.runner ? " (this one)" : ""),
          h("td", { class: r.state === "healthy" ? "ok" : "alarm" }, r.state),
          h("td", { class: "muted" }, `${duration(r.heartbeatAgeMs)} ago`),
          h("td", {}, r.units.length === 0 ? "—" : r.units.join(", "))
        )
      )
    ),
    h(
      "table",
      { id: "units" },
      h(
        "tr",
        {},
        ["unit", "on", "fencing token", "lag"].map((x) => h("th", {}, x))
      ),
      c.units.map((u) =>
        h(
          "tr",
          { "data-unit": u.name },
          h("td", {}, h("b", {}, u.name)),
          h(
            "td",
            { class: u.running ? undefined : "alarm" },
            u.running ? u.holder : `not running (last on ${u.holder})`
          ),
          h("td", { class: "muted" }, u.token),
          h(
            "td",
            {},
            u.lagEvents === null
              ? h("span", { class: "muted" }, "on its runner's console")
              : `${u.lagEvents} ev · ${duration(u.lagMs)}`
          )
        )
      )
    )
  )
}

let timer
const overviewPage = async () => {
  const refresh = async () => {
    try {
      const o = await call("overview")
      main.replaceChildren(...renderOverview(o).filter((x) => x !== undefined))
      status.textContent = `updated ${new Date().toLocaleTimeString()}`
    } catch (e) {
      status.textContent = `cannot read the runner: ${e.message}`
    }
  }
  await refresh()
  timer = setInterval(refresh, 2000)
}

// -- dead letters

const deadLettersPage = async (params) => {
  const filters = {
    sink: params.get("sink") ?? "",
    type: params.get("type") ?? "",
    error: params.get("error") ?? ""
  }
  const selected = new Set()
  let letters = []
  let shown
  const detail = h(
    "section",
    { id: "detail" },
    h("p", { class: "muted" }, "Choose a dead letter to see its event and error.")
  )
  const list = h("section", { id: "dead-letters" })
  const actions = h("span", {})

  const act = async (what, ids) => {
    const ok = await confirmDialog(
      `${what === "retry" ? "Retry (deliver again)" : "Drop (delete for good)"} ${ids.length} dead letter(s): ${ids.join(", ")}?`
    )
    if (!ok) return
    try {
      const result = await call(`dead-letters/${what}`, { ids })
      status.textContent =
        what === "retry"
          ? `retried: ${result.outcomes.filter((x) => x.delivered).length} delivered, ${result.outcomes.filter((x) => !x.delivered).length} still failing`
          : `dropped ${result.dropped}`
    } catch (e) {
      status.textContent = `${what} failed: ${e.message}`
    }
    selected.clear()
    await load()
  }

  const showDetail = (l) => {
    shown = l.id
    let event = l.event
    try {
      event = JSON.stringify(JSON.parse(l.event), null, 2)
    } catch {}
    detail.replaceChildren(
      h("h2", {}, `Dead letter ${l.id}: ${l.eventType} → ${l.sink}`),
      h(
        "p",
        { class: "muted" },
        `event ${l.eventId} · ${l.attempts} attempt(s) · first ${time(l.firstFailure)} · last ${time(l.lastFailure)}`
      ),
      h(
        "div",
        { class: "split" },
        h("div", {}, h("h2", {}, "Event"), h("pre", { id: "event-json" }, event)),
        h("div", {}, h("h2", {}, "Error"), h("pre", { id: "event-error" }, l.error))
      ),
      h(
        "p",
        {},
        h("button", { onclick: () => act("retry", [l.id]) }, "Retry this one"),
        " ",
        h("button", { onclick: () => act("drop", [l.id]) }, "Drop this one")
      )
    )
  }

  const renderList = () => {
    actions.replaceChildren(
      h(
        "button",
        { disabled: selected.size === 0, onclick: () => act("retry", [...selected]) },
        `Retry selected (${selected.size})`
      ),
      " ",
      h(
        "button",
        { disabled: selected.size === 0, onclick: () => act("drop", [...selected]) },
        `Drop selected (${selected.size})`
      )
    )
    list.replaceChildren(
      h("h2", {}, `${letters.length} dead letter(s) `, actions),
      letters.length === 0
        ? h("p", { class: "ok" }, "none")
        : h(
            "table",
            {},
            h(
              "tr",
              {},
              h(
                "th",
                {},
                h("input", {
                  type: "checkbox",
                  "aria-label": "select all",
                  checked: selected.size === letters.length,
                  onchange: (e) => {
                    for (const l of letters)
                      e.target.checked ? selected.add(l.id) : selected.delete(l.id)
                    renderList()
                  }
                })
              ),
              ["id", "sink", "type", "event", "attempts", "last failure", "error"].map((c) =>
                h("th", {}, c)
              )
            ),
            letters.map((l) =>
              h(
                "tr",
                { "data-id": l.id, class: shown === l.id ? "selected" : undefined },
                h(
                  "td",
                  {},
                  h("input", {
                    type: "checkbox",
                    "aria-label": `select ${l.id}`,
                    checked: selected.has(l.id),
                    onchange: (e) => {
                      e.target.checked ? selected.add(l.id) : selected.delete(l.id)
                      renderList()
                    }
                  })
                ),
                h(
                  "td",
                  {},
                  h(
                    "a",
                    {
                      href: "#",
                      onclick: (e) => {
                        e.preventDefault()
                        showDetail(l)
                        renderList()
                      }
                    },
                    l.id
                  )
                ),
                h("td", {}, l.sink),
                h("td", {}, l.eventType),
                h("td", { class: "muted" }, l.eventId),
                h("td", {}, l.attempts),
                h("td", { class: "muted" }, time(l.lastFailure)),
                h("td", {}, l.error.length > 100 ? `${l.error.slice(0, 100)}…` : l.error)
              )
            )
          )
    )
  }

  const load = async () => {
    const q = new URLSearchParams(Object.entries(filters).filter(([, v]) => v !== ""))
    try {
      letters = (await call(`dead-letters?${q}`)).deadLetters
    } catch (e) {
      status.textContent = `cannot read dead letters: ${e.message}`
      letters = []
    }
    if (shown !== undefined && !letters.some((l) => l.id === shown)) {
      shown = undefined
      detail.replaceChildren(
        h("p", { class: "muted" }, "Choose a dead letter to see its event and error.")
      )
    }
    renderList()
  }

  const input = (name, placeholder) =>
    h("input", {
      name,
      placeholder,
      value: filters[name],
      oninput: (e) => (filters[name] = e.target.value)
    })
  main.replaceChildren(
    h(
      "form",
      {
        class: "filters",
        onsubmit: (e) => {
          e.preventDefault()
          load()
        }
      },
      input("sink", "sink"),
      input("type", "event type contains"),
      input("error", "error contains"),
      h("button", { type: "submit" }, "Filter")
    ),
    list,
    detail
  )
  await load()
}

// -- tap: a live tail of a sink's events (server-sent events, read with fetch so the
// token can go in a header)

let tapping
const tapPage = async () => {
  const overview = await call("overview").catch(() => ({ sinks: [] }))
  const lines = h("tbody", {})
  const shown = h("pre", { id: "tap-event" }, "Choose an event to see it.")
  const sink = h(
    "select",
    { name: "sink", "aria-label": "sink" },
    overview.sinks.map((k) => h("option", { value: k.name }, k.name))
  )
  const events = h("input", { name: "events", placeholder: "event pattern (user.*)" })
  const count = h("span", { class: "muted" }, "")
  let received = 0
  const stop = () => {
    tapping?.abort()
    tapping = undefined
  }
  const start = async () => {
    stop()
    lines.replaceChildren()
    received = 0
    const controller = new AbortController()
    tapping = controller
    const q = new URLSearchParams({ sink: sink.value })
    if (events.value) q.set("events", events.value)
    const headers = token() ? { authorization: `Bearer ${token()}` } : {}
    try {
      const response = await fetch(`/console/api/tap?${q}`, { headers, signal: controller.signal })
      if (!response.ok) {
        const json = await response.json().catch(() => ({}))
        status.textContent = `tap: ${json.error ?? `HTTP ${response.status}`}`
        return
      }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
      let buffer = ""
      while (true) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += value
        let end = buffer.indexOf("\n\n")
        while (end >= 0) {
          const message = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          end = buffer.indexOf("\n\n")
          if (message.startsWith(": tapping")) status.textContent = `tapping ${sink.value}`
          if (!message.startsWith("data: ")) continue
          const e = JSON.parse(message.slice(6))
          received++
          count.textContent = `${received} event(s)`
          lines.prepend(
            h(
              "tr",
              { "data-event": e.id },
              h("td", { class: "muted" }, e.createdAt),
              h("td", {}, e.type),
              h(
                "td",
                {},
                h(
                  "a",
                  {
                    href: "#/tap",
                    onclick: (ev) => {
                      ev.preventDefault()
                      shown.textContent = JSON.stringify(e.event, null, 2)
                    }
                  },
                  e.id
                )
              ),
              h("td", { class: "muted" }, e.organizationId ?? "")
            )
          )
          while (lines.children.length > 200) lines.lastChild.remove()
        }
      }
    } catch (e) {
      if (e.name !== "AbortError") status.textContent = `tap: ${e.message}`
    }
  }
  main.replaceChildren(
    h(
      "form",
      {
        class: "filters",
        onsubmit: (e) => {
          e.preventDefault()
          start()
        }
      },
      sink,
      events,
      h("button", { type: "submit" }, "Start"),
      h("button", { type: "button", onclick: stop }, "Stop"),
      count
    ),
    h(
      "div",
      { class: "split" },
      h(
        "section",
        {},
        h("h2", {}, "Events passing the sink's filter, newest first"),
        h(
          "table",
          { id: "tap" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["created", "type", "id", "organization"].map((c) => h("th", {}, c))
            )
          ),
          lines
        )
      ),
      h("section", {}, h("h2", {}, "Event"), shown)
    )
  )
}

// -- the event catalogue: every type, who receives it, an example

const cataloguePage = async () => {
  const { types } = await call("catalogue")
  const example = h("pre", { id: "example" }, "Choose a type to see an example event.")
  const body = h("tbody", {})
  const filter = h("input", { name: "filter", placeholder: "type contains" })
  const render = () =>
    body.replaceChildren(
      ...types
        .filter((t) => t.type.includes(filter.value))
        .map((t) =>
          h(
            "tr",
            { "data-type": t.type },
            h(
              "td",
              {},
              h(
                "a",
                {
                  href: "#/catalogue",
                  onclick: (e) => {
                    e.preventDefault()
                    example.textContent = JSON.stringify(t.example, null, 2)
                  }
                },
                t.type
              )
            ),
            h(
              "td",
              { class: t.sinks.length === 0 ? "muted" : undefined },
              t.sinks.length === 0
                ? "no sink"
                : t.sinks
                    .map((k) =>
                      k.organizations ? `${k.name} (${k.organizations.join(", ")})` : k.name
                    )
                    .join(", ")
            ),
            h("td", { class: t.read ? "ok" : "muted" }, t.read ? "read" : "not read")
          )
        )
    )
  filter.addEventListener("input", render)
  render()
  main.replaceChildren(
    h("form", { class: "filters", onsubmit: (e) => e.preventDefault() }, filter),
    h(
      "div",
      { class: "split" },
      h(
        "section",
        {},
        h("h2", {}, `${types.length} event types`),
        h(
          "table",
          { id: "catalogue" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["type", "sinks that take it", "from WorkOS"].map((c) => h("th", {}, c))
            )
          ),
          body
        )
      ),
      h("section", {}, h("h2", {}, "Example"), example)
    )
  )
}

// -- the audit log: the audit-log sink's store, queried and verified as `workos-relay
// audit query|verify` do (the runner runs the audit package's own code)

/** An actor: its name (or email), then its id. */
const actorCell = (a) =>
  a === null
    ? h("td", { class: "muted" }, "—")
    : h(
        "td",
        {},
        a.name ?? "",
        a.name !== null && a.id !== null ? h("br") : undefined,
        a.id === null ? undefined : h("span", { class: "muted" }, a.id)
      )

const auditPage = async () => {
  const info = await call("audit")
  if (info.sinks.length === 0) {
    main.replaceChildren(
      h(
        "section",
        { id: "audit-missing" },
        h("h2", {}, "Audit log"),
        h("p", {}, info.help),
        info.installed ? undefined : h("pre", {}, "npm install @workos-relay/sink-audit-log")
      )
    )
    return
  }
  const fields = { type: "", org: "", actor: "", since: "", until: "" }
  const sink = h(
    "select",
    { name: "sink", "aria-label": "audit-log sink" },
    info.sinks.map((s) => h("option", { value: s.name }, `${s.name} (${s.store})`))
  )
  const limit = h(
    "select",
    { name: "limit", "aria-label": "records a page" },
    [10, 25, 50, 100, 500].map((n) => h("option", { value: n, selected: n === 50 }, `${n} a page`))
  )
  const mismatched = h("input", { type: "checkbox", name: "mismatched" })
  const where = h("span", { class: "muted", id: "audit-where" })
  const results = h("section", { id: "audit-results" })
  const verdict = h(
    "p",
    { id: "audit-verify", class: "muted" },
    "Verify walks the hash chain and names the first record modified, deleted, inserted or moved."
  )
  // cursors[k] is the `before` of page k (page 0 has none): Newer goes back one.
  let cursors = [null]
  let index = 0
  // Only the latest query's answer is shown (an earlier one may arrive after it).
  let asked = 0

  const render = (p) => {
    const pager = h(
      "span",
      { class: "pager" },
      h(
        "button",
        {
          type: "button",
          id: "audit-newer",
          disabled: index === 0,
          onclick: () => {
            index--
            load()
          }
        },
        "← Newer"
      ),
      h("span", { class: "muted" }, ` page ${index + 1} `),
      h(
        "button",
        {
          type: "button",
          id: "audit-older",
          disabled: p.next === null,
          onclick: () => {
            index++
            load()
          }
        },
        "Older →"
      )
    )
    const rows = p.records.flatMap((r) => {
      const json = h(
        "tr",
        { class: "json", hidden: true },
        h("td", { colspan: 7 }, h("pre", {}, JSON.stringify(r, null, 2)))
      )
      const row = h(
        "tr",
        { "data-id": r.id, "data-seq": r.seq },
        h("td", { class: "muted nowrap" }, r.created_at.replace("T", " ").replace("Z", "")),
        h("td", { class: "nowrap" }, r.type),
        h("td", {}, r.organization_id ?? ""),
        actorCell(r.actor),
        h("td", { class: "muted" }, r.targets.map((t) => `${t.type}:${t.id}`).join(" ")),
        h(
          "td",
          { class: "nowrap" },
          h(
            "a",
            {
              href: "#/audit",
              "aria-expanded": "false",
              onclick: (e) => {
                e.preventDefault()
                json.hidden = !json.hidden
                e.target.setAttribute("aria-expanded", String(!json.hidden))
              }
            },
            r.id
          )
        ),
        h("td", { class: "muted nowrap" }, r.seq)
      )
      return [row, json]
    })
    where.textContent = p.where
    results.replaceChildren(
      h("h2", {}, `${p.records.length} record(s), newest first `, pager),
      p.records.length === 0
        ? h("p", { class: "muted" }, "no record matches")
        : h(
            "table",
            { id: "audit" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["created (UTC)", "type", "organization", "actor", "targets", "event", "seq"].map(
                  (c) => h("th", {}, c)
                )
              )
            ),
            h("tbody", {}, rows)
          )
    )
  }

  const load = async () => {
    const q = new URLSearchParams({ sink: sink.value, limit: limit.value })
    for (const [k, v] of Object.entries(fields)) if (v.trim() !== "") q.set(k, v.trim())
    if (mismatched.checked) q.set("mismatched", "true")
    if (cursors[index]) q.set("before", cursors[index])
    const mine = ++asked
    try {
      const p = await call(`audit/query?${q}`)
      if (mine !== asked) return
      cursors = cursors.slice(0, index + 1)
      cursors.push(p.next)
      render(p)
    } catch (e) {
      if (mine !== asked) return
      results.replaceChildren(h("p", { class: "alarm", id: "audit-error" }, e.message))
    }
  }
  const restart = () => {
    cursors = [null]
    index = 0
    load()
  }

  const verify = async () => {
    verdict.className = "muted"
    verdict.textContent = `verifying ${sink.value}…`
    try {
      const v = await call("audit/verify", { sink: sink.value })
      verdict.className = v.ok ? "ok" : "alarm"
      verdict.textContent = v.ok
        ? `OK: ${v.records} record(s) verified from ${v.anchorSeq === 0 ? "the start" : `the anchor after record #${v.anchorSeq}`}; head hash ${v.headHash.slice(0, 16)}…${v.newer === null ? "" : `; ${v.newer} newer record(s) not checked`}`
        : `FAILED (${v.problem.kind}): ${v.problem.message}`
    } catch (e) {
      verdict.className = "alarm"
      verdict.textContent = `verify failed: ${e.message}`
    }
  }

  const input = (name, placeholder) =>
    h("input", {
      name,
      placeholder,
      "aria-label": placeholder,
      value: fields[name],
      oninput: (e) => (fields[name] = e.target.value)
    })
  sink.addEventListener("change", () => {
    verdict.className = "muted"
    verdict.textContent = ""
    restart()
  })
  limit.addEventListener("change", restart)
  main.replaceChildren(
    h(
      "form",
      {
        class: "filters",
        id: "audit-query",
        onsubmit: (e) => {
          e.preventDefault()
          restart()
        }
      },
      sink,
      input("type", "event types (user.*, dsync.*)"),
      input("org", "organization id"),
      input("actor", "actor id, name or email"),
      input("since", "since (2026-01-31, 24h)"),
      input("until", "until (exclusive)"),
      h("label", {}, mismatched, " only spec mismatches"),
      limit,
      h("button", { type: "submit" }, "Query")
    ),
    h(
      "section",
      {},
      h(
        "h2",
        {},
        "Verify ",
        h("button", { type: "button", id: "audit-verify-button", onclick: verify }, "Verify"),
        " ",
        where
      ),
      verdict
    ),
    results
  )
  await load()
}

// -- routing: #/, #/dead-letters?sink=..., #/tap, #/catalogue, #/audit

const route = async () => {
  clearInterval(timer)
  tapping?.abort()
  const [path, query] = (location.hash.slice(1) || "/").split("?")
  const pages = {
    "/dead-letters": "dead-letters",
    "/tap": "tap",
    "/catalogue": "catalogue",
    "/audit": "audit"
  }
  const page = pages[path] ?? "overview"
  for (const a of document.querySelectorAll("nav a"))
    a.classList.toggle("active", a.dataset.page === page)
  if (page === "dead-letters") await deadLettersPage(new URLSearchParams(query ?? ""))
  else if (page === "tap") await tapPage()
  else if (page === "catalogue") await cataloguePage()
  else if (page === "audit") await auditPage()
  else await overviewPage()
}
window.addEventListener("hashchange", route)
// The audit log's link shows when the relay has an audit-log sink (asked once the first
// page has its token, if it needs one; never asking for it again).
route()
  .catch((e) => {
    status.textContent = e.message
  })
  .then(() => call("audit", undefined, false))
  .then((a) => {
    if (a.sinks.length > 0) document.querySelector('nav a[data-page="audit"]').hidden = false
  })
  .catch(() => {})
