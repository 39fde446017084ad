import { fromEnv } from '@aws-sdk/credential-provider-env';

/**
 * Stands in for `@aws-sdk/credential-provider-node` inside the handler bundles (esbuild `alias` in
 * handlers/bundle.ts); handler code never imports it.
 *
 * Why: the SDK clients' default chain statically bundles every provider (SSO, INI, process, web
 * identity, container/IMDS) with the STS, SSO and sign-in clients they use: ~100 KB minified that a
 * Lambda function never runs, because Lambda puts the execution role's credentials in
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, the chain's first link.
 *
 * Same result as the chain: when AWS_PROFILE (or `profile`) is unset and those variables are
 * present, it returns `fromEnv`, exactly what the chain's first link returns. Otherwise (a profile,
 * or no env credentials) it loads the real chain at run time from the runtime's own SDK (the
 * nodejs22.x runtime ships it; locally node_modules does), so no credential source is lost.
 */
const FULL_CHAIN = '@aws-sdk/credential-provider-node';

type Init = Parameters<typeof fromEnv>[0] & { profile?: string };
type AwsCredentialIdentityProvider = ReturnType<typeof fromEnv>;
type AwsCredentialIdentity = Awaited<ReturnType<AwsCredentialIdentityProvider>>;
type Chain = (init: Init) => AwsCredentialIdentityProvider;

export const defaultProvider = (init: Init = {}): AwsCredentialIdentityProvider => {
  let chain: AwsCredentialIdentityProvider | undefined;
  return async (props?: Parameters<AwsCredentialIdentityProvider>[0]): Promise<AwsCredentialIdentity> => {
    const profile = init.profile ?? process.env.AWS_PROFILE;
    if (!profile && process.env.AWS_ACCESS_KEY_ID && process.env.AWS_SECRET_ACCESS_KEY)
      return fromEnv(init)();
    // module.require, not require: esbuild must leave this a run-time lookup, not bundle the chain.
    chain ??= (module.require(FULL_CHAIN) as { defaultProvider: Chain }).defaultProvider(init);
    return chain(props);
  };
};
