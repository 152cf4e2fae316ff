// A Node.js router recording routing decisions with the official OpenTelemetry JS SDK, exactly as
// collector/README.md ("Senders in other languages") shows, exporting over OTLP/HTTP.
//
//   node send.mjs <receiver url> <scenario>
//
// Scenarios: `five-models` (five route decisions for different models inside one span), `twin`
// (one decision). Each decision is a log record and a span event of the request's span, as the
// README's recipe does. Prints {"traceId": ..., "spanId": ...} once everything is exported.
import { context, trace } from '@opentelemetry/api';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';

const [url, scenario] = process.argv.slice(2);

// The resource attributes that fill the stream's instance_id, service, hostname and pid.
const resource = resourceFromAttributes({
  'service.name': 'node-router',
  'service.instance.id': 'node-host_4242_0a1b2c3d',
  'host.name': 'node-host',
  'process.pid': 4242,
});
const loggerProvider = new LoggerProvider({
  resource,
  processors: [new BatchLogRecordProcessor({ exporter: new OTLPLogExporter({ url: `${url}/v1/logs` }) })],
});
const tracerProvider = new BasicTracerProvider({
  resource,
  spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${url}/v1/traces` }))],
});
const logger = loggerProvider.getLogger('node-router');
const tracer = tracerProvider.getTracer('node-router');

// The recipe: one decision = one log record (every attribute, the message as body) and, inside
// a request's span, one span event with the same name and attributes (for Jaeger's timeline).
function recordRouteDecision(span, model, backend, reason) {
  const name = 'sollol.routing.route_decision';
  const attributes = {
    'gen_ai.request.model': model,
    'sollol.backend': backend,
    'sollol.reason': reason,
  };
  span.addEvent(name, attributes);
  logger.emit({
    eventName: name,
    body: `🎯 ${model} → ${backend} | ${reason}`,
    attributes,
    context: trace.setSpan(context.active(), span),
  });
}

const scenarios = {
  'five-models': (span) => {
    for (const model of ['llama3.2:3b', 'qwen2.5:7b', 'mistral:7b', 'phi3:mini', 'gemma2:9b']) {
      recordRouteDecision(span, model, 'ollama', 'sufficient_resources');
    }
  },
  twin: (span) => recordRouteDecision(span, 'llama3.2:3b', 'ollama', 'lowest_latency (15ms)'),
};

const span = tracer.startSpan('chat request');
scenarios[scenario](span);
span.end();
await loggerProvider.shutdown();
await tracerProvider.shutdown();
const { traceId, spanId } = span.spanContext();
console.log(JSON.stringify({ traceId, spanId }));
