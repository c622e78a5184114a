// Placeholder until this page is built: the shell alone (session, navigation, theme).
import { start } from "../shell.js";

start(async () => {});
