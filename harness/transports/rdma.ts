// The rdma: link transport as a plug-in (platform/link.ts loads harness/transports/ on demand).
export { rdmaLinkTransport as default } from '../rdma/link.js';
