// aws-local-stepfunctions 3 calls Promise.withResolvers (Node 22+). On Node 20 the TypeError is
// swallowed by States.ALL catchers and executions silently take the failure path.
interface WithResolversCtor {
  withResolvers?<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void };
}
const P = Promise as unknown as WithResolversCtor;
if (typeof P.withResolvers !== 'function') {
  P.withResolvers = function withResolvers<T>() {
    let resolve!: (v: T) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
export {};
