/**
 * A child process for the lock tests: another application on the mirror's file. It
 * takes the write lock (`BEGIN IMMEDIATE`, and writes a row of its own), prints
 * `locked`, and holds it until a line comes on stdin; then commits, prints
 * `released` and exits.
 */
import { DatabaseSync } from "node:sqlite"

const [file] = process.argv.slice(2)
const db = new DatabaseSync(file!)
db.exec("CREATE TABLE IF NOT EXISTS app_notes (note TEXT)")
db.exec("BEGIN IMMEDIATE")
db.prepare("INSERT INTO app_notes (note) VALUES (?)").run("written while holding the lock")
console.log("locked")
process.stdin.once("data", () => {
  db.exec("COMMIT")
  db.close()
  console.log("released")
  process.exit(0)
})
