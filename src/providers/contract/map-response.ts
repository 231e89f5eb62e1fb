/**
 * The answer of an HTTP endpoint speaking the real-time journeys outbound contract, mapped to a send outcome.
 *
 * The response contract (../shared/seeds/realtime-journeys-custom-apis.md) is `{ChannelDefinitionId, MessageId?,
 * RequestId, Status}` with `RequestId` equal to the request's and `Status` one of `Sent`, `Delivered` (accepted),
 * `NotSent` (refused, "without a possibility to retry") and `NotDelivered` (accepted, then not delivered: as final
 * as `NotSent` for this send). Over HTTP the status code speaks first: 429 (with `Retry-After`) is rate limiting,
 * 5xx unavailability, 401/403 a refused signature (configuration), 404/405/410 a wrong endpoint (configuration).
 */
import { parseRetryAfter, type HttpResponse } from '../http.js';
import { bodySnippet, failure, isRecord, type SendOutcome } from '../mapping.js';

/** The pause on a 429 without `Retry-After`. */
export const CONTRACT_DEFAULT_RETRY_AFTER_MS = 1000;

/** Contract statuses that mean the provider accepted the message. */
export const CONTRACT_ACCEPTED_STATUSES: readonly string[] = ['Sent', 'Delivered'];
/** Contract statuses that are a permanent refusal of this message. */
export const CONTRACT_REFUSED_STATUSES: readonly string[] = ['NotSent', 'NotDelivered'];

/** Maps the endpoint's answer to the contract request whose `RequestId` was `requestId`. */
export function mapContractResponse(response: HttpResponse, requestId: string): SendOutcome {
  const { status, body } = response;
  const contractStatus = isRecord(body) && typeof body['Status'] === 'string' ? body['Status'] : undefined;
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(response.headers['retry-after']) ?? CONTRACT_DEFAULT_RETRY_AFTER_MS;
    return failure(
      'ProviderRateLimited',
      `contract endpoint 429: too many requests, retry after ${retryAfterMs} ms`,
      response,
      { retryAfterMs },
    );
  }
  if (status >= 500)
    return failure('ProviderUnavailable', `contract endpoint ${status}: ${bodySnippet(body)}`, response);
  if (status === 401 || status === 403)
    return failure(
      'ProviderUnauthorized',
      `contract endpoint ${status}: the signed request was refused (signing secret?): ${bodySnippet(body)}`,
      response,
    );
  if (status === 404 || status === 405 || status === 410)
    return failure(
      'ProviderUnauthorized',
      `contract endpoint ${status}: no contract endpoint at the configured URL: ${bodySnippet(body)}`,
      response,
    );
  if (status >= 400) {
    const why = contractStatus === undefined ? bodySnippet(body) : `Status ${contractStatus}`;
    return failure(
      'ProviderRejected',
      `contract endpoint ${status}: the message was refused (${why})`,
      response,
      contractStatus === undefined ? {} : { upstreamCode: contractStatus },
    );
  }
  if (status < 200 || status >= 300)
    return failure('ProviderBadResponse', `contract endpoint answered ${status}: ${bodySnippet(body)}`, response);
  if (!isRecord(body) || contractStatus === undefined || typeof body['RequestId'] !== 'string') {
    return failure(
      'ProviderBadResponse',
      `contract endpoint answered ${status} without the response contract {RequestId, Status}: ${bodySnippet(body)}`,
      response,
    );
  }
  if (body['RequestId'] !== requestId) {
    return failure(
      'ProviderBadResponse',
      `contract endpoint answered for RequestId ${JSON.stringify(body['RequestId'])}, not ${JSON.stringify(requestId)}`,
      response,
      { upstreamCode: contractStatus },
    );
  }
  if (CONTRACT_REFUSED_STATUSES.includes(contractStatus)) {
    return failure(
      'ProviderRejected',
      `contract endpoint: Status ${contractStatus} (refused without a possibility to retry)`,
      response,
      { upstreamCode: contractStatus },
    );
  }
  if (!CONTRACT_ACCEPTED_STATUSES.includes(contractStatus)) {
    return failure(
      'ProviderBadResponse',
      `contract endpoint answered an unknown Status ${JSON.stringify(contractStatus)}`,
      response,
      { upstreamCode: contractStatus },
    );
  }
  const messageId = typeof body['MessageId'] === 'string' && body['MessageId'] !== '' ? body['MessageId'] : requestId;
  return { providerMessageId: messageId, status: contractStatus };
}
