import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as WorkOSStandIn from "../src/WorkOSStandIn.ts"

let standIn: WorkOSStandIn.StandIn
beforeAll(async () => {
  standIn = await WorkOSStandIn.start({ events: 0 })
})
afterAll(() => standIn?.close())

const get = async (path: string, key = standIn.apiKey) => {
  const response = await fetch(`${standIn.url}${path}`, {
    headers: { authorization: `Bearer ${key}` }
  })
  return { status: response.status, body: (await response.json()) as any }
}

const user = (id: string, first_name = "A") => ({
  object: "user",
  id,
  email: `${id}@x.com`,
  first_name
})
const directoryUser = (id: string, directory_id: string) => ({
  object: "directory_user",
  id,
  directory_id,
  organization_id: "org_1"
})

describe("the WorkOS stand-in's state and list APIs", () => {
  it("keeps the objects its events describe and lists them page by page", async () => {
    standIn.append([
      ...Array.from({ length: 15 }, (_, i) => ({ event: "user.created", data: user(`user_${i}`) })),
      { event: "user.updated", data: { ...user("user_3", "B"), previous_attributes: {} } },
      { event: "user.deleted", data: user("user_4") }
    ])
    const first = await get("/user_management/users?limit=10")
    expect(first.status).toBe(200)
    expect(first.body.data).toHaveLength(10)
    expect(first.body.data.find((u: any) => u.id === "user_3")).toEqual(user("user_3", "B"))
    expect(first.body.data.some((u: any) => u.id === "user_4")).toBe(false)
    const second = await get(
      `/user_management/users?limit=10&after=${first.body.list_metadata.after}`
    )
    expect(second.body.data).toHaveLength(4)
    expect(second.body.list_metadata.after).toBeNull()
    expect((await get("/user_management/users?limit=500")).status).toBe(422)
    expect((await get("/user_management/users", "sk_wrong")).status).toBe(401)
  })

  it("drops a deleted directory's users with it; drift on demand: unseen events and quiet changes", async () => {
    standIn.append([
      { event: "dsync.user.created", data: directoryUser("du_1", "dir_1") },
      { event: "dsync.user.created", data: directoryUser("du_2", "dir_2") }
    ])
    expect((await get("/directory_users?directory=dir_1")).body.data.map((u: any) => u.id)).toEqual(
      ["du_1"]
    )
    const served = standIn.size()
    standIn.appendUnseen([{ event: "dsync.deleted", data: { object: "directory", id: "dir_1" } }])
    expect(standIn.size()).toBe(served)
    expect((await get("/directory_users?directory=dir_1")).body.data).toEqual([])
    expect(standIn.state.changeQuietly("directory_users", "du_2", { state: "suspended" })).toBe(
      true
    )
    expect((await get("/directory_users?directory=dir_2")).body.data[0].state).toBe("suspended")
    expect(standIn.state.changeQuietly("directory_users", "du_404", {})).toBe(false)
  })

  it("keeps directory group memberships and lists a group's users (/directory_users?group=)", async () => {
    const group = (id: string) => ({
      object: "directory_group",
      id,
      directory_id: "directory_g",
      organization_id: "org_1",
      name: id
    })
    const added = (g: string, u: string) => ({
      event: "dsync.group.user_added",
      data: { directory_id: "directory_g", user: directoryUser(u, "directory_g"), group: group(g) }
    })
    standIn.append([
      { event: "dsync.group.created", data: group("directory_group_a") },
      { event: "dsync.group.created", data: group("directory_group_b") },
      ...["directory_user_1", "directory_user_2", "directory_user_3"].map((u) => ({
        event: "dsync.user.created",
        data: directoryUser(u, "directory_g")
      })),
      added("directory_group_a", "directory_user_1"),
      added("directory_group_a", "directory_user_2"),
      added("directory_group_a", "directory_user_3"),
      added("directory_group_b", "directory_user_1"),
      {
        event: "dsync.group.user_removed",
        data: added("directory_group_a", "directory_user_2").data
      },
      { event: "dsync.user.deleted", data: directoryUser("directory_user_3", "directory_g") }
    ])
    const members = await get("/directory_users?group=directory_group_a&limit=10")
    expect(members.body.data.map((u: any) => u.id)).toEqual(["directory_user_1"])
    expect(standIn.state.groupMembers("directory_group_b")).toEqual(["directory_user_1"])
    standIn.append([{ event: "dsync.group.deleted", data: group("directory_group_b") }])
    expect(standIn.state.groupMembers("directory_group_b")).toEqual([])
    expect((await get("/directory_users?group=directory_group_none&limit=10")).body.data).toEqual(
      []
    )
  })
})
