import { formatProfile, summarizeProfile } from './profile.js';
for (const f of process.argv.slice(2)) console.log(formatProfile(summarizeProfile(f, process.cwd(), undefined, 25)));
