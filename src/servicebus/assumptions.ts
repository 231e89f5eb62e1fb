/**
 * The Service Bus layer's choices where no Microsoft page settles what the broker does. Each says what it rests on and
 * what would change if it were wrong; the Service Bus emulator reads the same protocol for itself
 * (docs/emulators/servicebus.md).
 */

/**
 * How long a receive waits, after a batch's first message came, for the rest of the batch, in milliseconds: none. The
 * rest is asked for with a drain at once (`receiveMessages(max - 1, { maxWaitTimeInMs: 0 })`: the SDK grants the
 * credit and drains it in the same flow), and the batch is what the broker sends before it answers the drain. That
 * rests on AMQP 1.0 (part 2, the `flow` performative, field `drain`): a sender told to drain uses up the credit "after
 * sending all available messages". @azure/service-bus relies on the same reading at the end of every
 * `receiveMessages` wait, and no Service Bus page says otherwise. If the broker answered a drain before sending what
 * it holds, no message would be lost or delayed, but a busy queue would be read one message per batch (more handler
 * calls, Dataverse requests and CPU per activity): a wait of a few milliseconds here would then be the fix.
 *
 * A drain is what every `receiveMessages` that does not fill ends with, so this adds none per batch; but batches are
 * smaller under a light load, so there are more of them. The SDK closes the receive link when a drain is not answered
 * within 200 ms (github.com/Azure/azure-sdk-for-js issue 28023, "link churn" on slow networks; that batch is then
 * settled over the `$management` link, or, for a session, comes back to the next holder): run the workers in the
 * namespace's region, where a drain takes a few milliseconds.
 */
export const REST_OF_BATCH_WAIT_MS = 0;
