import { describe, expect, it } from "@effect/vitest"
import { examples } from "@workos-relay/core/Examples"
import * as Template from "../src/Template.ts"

describe("Template", () => {
  it("compiles literal text and paths", () => {
    expect(Template.compile("Hi {{data.email}}, {{ data.emails.0.value }}!")).toEqual({
      source: "Hi {{data.email}}, {{ data.emails.0.value }}!",
      parts: [
        { literal: "Hi " },
        { path: ["data", "email"] },
        { literal: ", " },
        { path: ["data", "emails", "0", "value"] },
        { literal: "!" }
      ]
    })
  })

  it("says what is wrong with a bad template, and where", () => {
    expect(Template.compile("a {{data.x")).toEqual({ error: '"{{" without a "}}" at character 3' })
    expect(Template.compile("a }} b")).toEqual({ error: '"}}" without a "{{" at character 3' })
    expect(Template.compile("{{data x}}")).toEqual({
      error: '"{{data x}}" is not a path like {{data.email}} or {{data.emails.0.value}}'
    })
    expect(Template.compile("{{}}")).toHaveProperty("error")
  })

  it("looks values up in the event; absent ones are empty, objects are JSON", () => {
    const event = examples["dsync.user.created"]
    expect(Template.lookup(event, ["data", "emails", "0", "value"])).toBe(
      "marcelina.davis@example.com"
    )
    expect(Template.lookup(event, ["data", "nope", "deeper"])).toBe("")
    expect(Template.lookup(event, ["data", "role"])).toBe('{"slug":"admin"}')
  })

  it("escapes the values it pulls in, not its own text", () => {
    const template = Template.compile("*{{data.name}}*") as Template.Template
    const pieces = Template.pieces(template, { data: { name: "<!here>" } })
    expect(pieces).toEqual(["*", { value: "<!here>" }, "*"])
    expect(Template.plainText(template, { data: { name: "<!here>" } })).toBe("*<!here>*")
  })
})
