// The chat core lives in frontend/shared/chat-store.js (shared with the patient app).
import { reactive } from 'vue'
import { useReactive } from '../../../shared/chat-store.js'

useReactive(reactive)

export * from '../../../shared/chat-store.js'
