// dynalite 4 ships no types; only the in-process server factory is used.
declare module 'dynalite' {
  import type { Server } from 'http';
  function dynalite(options?: {
    createTableMs?: number;
    deleteTableMs?: number;
    updateTableMs?: number;
    path?: string;
  }): Server;
  export = dynalite;
}
