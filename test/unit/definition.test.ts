/**
 * Publishing point definitions (`.isml`, protocol doc §5): reading every meta of §5.2 with its type,
 * editing a file in place (only what changes changes; unknown metas, comments, `<body>`, indentation
 * and line endings survive byte for byte), merging settings layers with their contradictions, and the
 * upstream publishing points a `sourceType=Pull` point lists (`pullSources`).
 */
import { XMLParser } from 'fast-xml-parser';
import {
  IIS_DEFAULTS,
  MAX_LOOKAHEAD,
  META_NAMES,
  MetaName,
  SettingsOverrides,
  pullSources,
  readDefinition,
  resolveSettings,
  writeDefinition,
} from '../../lib/definition';
import { smoothErrorOf as errorOf } from '../helpers/errors';

/**
 * A definition as IIS writes it (XmlDocument.Save: UTF-8 BOM, CRLF, two-space indentation), with every
 * meta of §5.2, an unknown meta, a comment and a pull/push target list in `<body>`.
 */
const IIS_SAMPLE = [
  '\uFEFF<?xml version="1.0" encoding="utf-8"?>',
  '<smil xmlns="http://www.w3.org/2001/SMIL20/Language">',
  '  <head>',
  '    <meta name="title" content="Channel 1 &amp; friends" />',
  '    <meta name="module" content="liveSmoothStreaming" />',
  '    <meta name="sourceType" content="Push" />',
  '    <meta name="publishing" content="Fragments;Streams;Archives" />',
  '    <meta name="estimatedTime" content="36000" />',
  '    <meta name="lookaheadChunks" content="3" />',
  '    <meta name="manifestWindowLength" content="120" />',
  '    <meta name="startOnFirstRequest" content="True" />',
  '    <meta name="archivePath" content="D:\\Archives\\ch1" />',
  '    <meta name="archiveSegmentLength" content="3600" />',
  '    <meta name="restartOnEncoderReconnect" content="true" />',
  '    <meta name="filters" content="" />',
  '    <meta name="formats" content="m3u8-aapl" />',
  '    <meta name="m3u8-aapl-segmentlength" content="10" />',
  '    <meta name="m3u8-aapl-maxbitrate" content="1600000" />',
  '    <meta name="m3u8-aapl-allowcaching" content="False" />',
  '    <meta name="m3u8-aapl-backwardcompatible" content="True" />',
  '    <meta name="m3u8-aapl-enableencryption" content="false" />',
  '    <meta name="iss.minimum_fragment_length" content="2" />',
  '  </head>',
  '  <body>',
  '    <!-- push-to-server targets -->',
  '    <par>',
  '      <ref src="http://edge1/live/ch1.isml" />',
  '    </par>',
  '  </body>',
  '</smil>',
  '',
].join('\r\n');

/** What {@link IIS_SAMPLE} sets, typed: every meta but this library's own. */
const IIS_SAMPLE_OVERRIDES: Required<Omit<SettingsOverrides, 'encoderRestart'>> = {
  title: 'Channel 1 & friends',
  module: 'liveSmoothStreaming',
  sourceType: 'Push',
  publishing: 'Fragments;Streams;Archives',
  estimatedTime: 36000,
  lookaheadChunks: 3,
  manifestWindowLength: 120,
  startOnFirstRequest: true,
  archivePath: 'D:\\Archives\\ch1',
  archiveSegmentLength: 3600,
  restartOnEncoderReconnect: true,
  filters: '',
  formats: 'm3u8-aapl',
  'm3u8-aapl-segmentlength': 10,
  'm3u8-aapl-maxbitrate': 1600000,
  'm3u8-aapl-allowcaching': false,
  'm3u8-aapl-backwardcompatible': true,
  'm3u8-aapl-enableencryption': false,
};

/** A minimal `.isml` with the given metas (optionally under a namespace prefix). */
function isml(metas: Record<string, string>, ns = ''): string {
  const p = ns ? `${ns}:` : '';
  const xmlns = ns ? `xmlns:${ns}` : 'xmlns';
  const head = Object.entries(metas)
    .map(([name, content]) => `    <${p}meta name="${name}" content="${content}" />\n`)
    .join('');
  return `<?xml version="1.0" encoding="utf-8"?>\n<${p}smil ${xmlns}="http://www.w3.org/2001/SMIL20/Language">\n  <${p}head>\n${head}  </${p}head>\n  <${p}body />\n</${p}smil>\n`;
}


/** Lines of `after` that differ from `before` (both split on LF; same line count required). */
function changedLines(before: string, after: string): Array<[string, string]> {
  const a = before.split('\n');
  const b = after.split('\n');
  expect(b.length).toBe(a.length);
  return a.flatMap((line, i) => (line === b[i] ? [] : [[line, b[i]!] as [string, string]]));
}

/** Lines of `after` that are not in `before` at the same place, for a pure insertion or removal. */
function lineDelta(before: string, after: string): { removed: string[]; added: string[] } {
  const a = before.split('\n');
  const b = after.split('\n');
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  return { removed: a.slice(head, a.length - tail), added: b.slice(head, b.length - tail) };
}

describe('readDefinition', () => {
  it('reads an IIS-written definition with every meta of §5.2, typed, and the <body> references', () => {
    const def = readDefinition(IIS_SAMPLE);
    expect(def.overrides).toEqual(IIS_SAMPLE_OVERRIDES);
    // Strict types, not just equal-looking values.
    expect(typeof def.overrides.lookaheadChunks).toBe('number');
    expect(typeof def.overrides.startOnFirstRequest).toBe('boolean');
    expect(def.sources).toEqual(['http://edge1/live/ch1.isml']);
    // The sample covers every IIS meta the library knows (so a new meta needs a line here).
    expect(Object.keys(def.overrides).sort()).toEqual(META_NAMES.filter((n) => n !== 'encoderRestart').sort());
  });

  it('reads the §5.1 layout example (LF, no BOM)', () => {
    const text = `<?xml version="1.0" encoding="utf-8"?>
<smil xmlns="http://www.w3.org/2001/SMIL20/Language">
  <head>
    <meta name="title" content="Channel 1" />
    <meta name="module" content="liveSmoothStreaming" />
    <meta name="sourceType" content="Push" />
    <meta name="publishing" content="Fragments;Streams;Archives" />
    <meta name="estimatedTime" content="0" />
    <meta name="lookaheadChunks" content="2" />
    <meta name="manifestWindowLength" content="0" />
    <meta name="startOnFirstRequest" content="False" />
    <meta name="archiveSegmentLength" content="0" />
    <meta name="restartOnEncoderReconnect" content="true" />
    <meta name="filters" content="" />
    <meta name="formats" content="m3u8-aapl" />
    <meta name="m3u8-aapl-segmentlength" content="10" />
    <meta name="m3u8-aapl-maxbitrate" content="3000000" />
  </head>
  <body>
    <!-- <par><ref src="http://upstream/live/ch1.isml" /></par> -->
  </body>
</smil>
`;
    const def = readDefinition(text);
    expect(def.overrides).toEqual({
      title: 'Channel 1',
      module: 'liveSmoothStreaming',
      sourceType: 'Push',
      publishing: 'Fragments;Streams;Archives',
      estimatedTime: 0,
      lookaheadChunks: 2,
      manifestWindowLength: 0,
      startOnFirstRequest: false,
      archiveSegmentLength: 0,
      restartOnEncoderReconnect: true,
      filters: '',
      formats: 'm3u8-aapl',
      'm3u8-aapl-segmentlength': 10,
      'm3u8-aapl-maxbitrate': 3000000,
    });
    // The commented-out reference is not a source.
    expect(def.sources).toEqual([]);
  });

  it.each([
    ['an empty file', ''],
    ['whitespace', ' \n\t\r\n'],
    ['a BOM only', '\uFEFF'],
    ['a smil without head', '<smil xmlns="http://www.w3.org/2001/SMIL20/Language"><body/></smil>'],
    ['an empty head', '<smil><head></head><body/></smil>'],
    ['a self-closing head', '<smil><head/></smil>'],
    ['an empty smil element', '<smil></smil>'],
    ['a self-closing smil element', '<smil/>'],
    ['a self-closing smil element with its namespace', '<smil xmlns="http://www.w3.org/2001/SMIL20/Language"/>'],
    ['a declaration, a comment and a doctype', '<?xml version="1.0"?>\n<!-- point -->\n<!DOCTYPE smil>\n<smil><head/></smil>'],
  ])('%s sets nothing (everything inherits)', (_name, text) => {
    expect(readDefinition(text)).toEqual({ overrides: {}, sources: [] });
  });

  it('a USP-style live server manifest (its own option names only) sets nothing', () => {
    const usp = isml({ archiving: 'true', archive_length: '3600', archive_segment_length: '60', dvr_window_length: '30', restart_on_encoder_reconnect: 'true', 'iss.minimum_fragment_length': '2' });
    expect(readDefinition(usp).overrides).toEqual({});
  });

  it('reads a file that starts with a BOM', () => {
    expect(readDefinition('\uFEFF' + isml({ lookaheadChunks: '4' })).overrides).toEqual({ lookaheadChunks: 4 });
  });

  it.each([
    ['true', true],
    ['True', true],
    ['TRUE', true],
    [' tRuE ', true],
    ['false', false],
    ['False', false],
    ['FALSE', false],
  ])('reads the boolean %p case-insensitively, for every boolean meta', (content, value) => {
    const bools: MetaName[] = ['startOnFirstRequest', 'restartOnEncoderReconnect', 'm3u8-aapl-allowcaching', 'm3u8-aapl-backwardcompatible', 'm3u8-aapl-enableencryption'];
    const { overrides } = readDefinition(isml(Object.fromEntries(bools.map((b) => [b, content]))));
    expect(overrides).toEqual(Object.fromEntries(bools.map((b) => [b, value])));
  });

  it.each(['yes', '1', '0', '', 'truee', 'on'])('rejects the boolean %p, naming the meta', (content) => {
    for (const name of ['startOnFirstRequest', 'restartOnEncoderReconnect', 'm3u8-aapl-enableencryption']) {
      const err = errorOf(() => readDefinition(isml({ [name]: content })));
      expect(err.code).toBe('ERR_BAD_DEFINITION');
      expect(err.message).toContain(name);
    }
  });

  it.each([
    ['Fragments;Streams;Archives', 'Fragments;Streams;Archives'],
    ['Fragments,Streams,Archives', 'Fragments;Streams;Archives'],
    ['Fragments, Streams', 'Fragments;Streams'],
    [' fragments ; STREAMS ', 'Fragments;Streams'],
    ['Fragments', 'Fragments'],
    ['Fragments;;Streams;', 'Fragments;Streams'],
    ['', ''],
  ])('reads publishing=%p (";" or "," separated, any case) as %p', (content, value) => {
    expect(readDefinition(isml({ publishing: content })).overrides.publishing).toBe(value);
  });

  it.each(['Fragments;Video', 'Fragments Streams', 'All'])('rejects publishing=%p', (content) => {
    const err = errorOf(() => readDefinition(isml({ publishing: content })));
    expect(err.code).toBe('ERR_BAD_DEFINITION');
    expect(err.message).toContain('publishing');
  });

  it.each([
    ['Push', 'Push'],
    ['push', 'Push'],
    ['PULL', 'Pull'],
  ])('reads sourceType=%p as %p', (content, value) => {
    expect(readDefinition(isml({ sourceType: content })).overrides.sourceType).toBe(value);
  });

  it.each([
    ['continue', 'continue'],
    ['Refuse', 'refuse'],
    [' RESET ', 'reset'],
  ])('reads encoderRestart=%p as %p; anything else is refused naming the meta', (content, value) => {
    expect(readDefinition(isml({ encoderRestart: content })).overrides.encoderRestart).toBe(value);
    const err = errorOf(() => readDefinition(isml({ encoderRestart: 'shift' })));
    expect([err.code, err.message]).toEqual(['ERR_BAD_DEFINITION', expect.stringContaining('encoderRestart')]);
  });

  it('accepts whole numbers with surrounding spaces and the largest values', () => {
    const { overrides } = readDefinition(
      isml({ lookaheadChunks: ' 0 ', manifestWindowLength: '4294967295', estimatedTime: '4294967295', 'm3u8-aapl-maxbitrate': '4294967295' }),
    );
    expect(overrides).toEqual({ lookaheadChunks: 0, manifestWindowLength: 4294967295, estimatedTime: 4294967295, 'm3u8-aapl-maxbitrate': 4294967295 });
    expect(readDefinition(isml({ lookaheadChunks: String(MAX_LOOKAHEAD) })).overrides.lookaheadChunks).toBe(MAX_LOOKAHEAD);
  });

  it.each([
    ['lookaheadChunks', '-1'],
    ['lookaheadChunks', '1.5'],
    ['lookaheadChunks', 'two'],
    ['lookaheadChunks', ''],
    ['lookaheadChunks', String(MAX_LOOKAHEAD + 1)],
    ['lookaheadChunks', '0x10'],
    ['lookaheadChunks', '1e3'],
    ['manifestWindowLength', '4294967296'],
    ['manifestWindowLength', '12345678901'],
    ['manifestWindowLength', '00:02:00'],
    ['manifestWindowLength', 'PT2M'],
    ['estimatedTime', 'NaN'],
    ['estimatedTime', 'Infinity'],
    ['archiveSegmentLength', '-60'],
    ['m3u8-aapl-segmentlength', '10s'],
    ['m3u8-aapl-maxbitrate', '3 000 000'],
    ['sourceType', 'Pushed'],
    ['sourceType', ''],
    ['title', 'x'.repeat(1025)],
  ])('rejects %s=%p, naming the meta', (name, content) => {
    const err = errorOf(() => readDefinition(isml({ [name]: content })));
    expect(err.code).toBe('ERR_BAD_DEFINITION');
    expect(err.message).toContain(name);
  });

  it('rejects a missing content attribute on a numeric or boolean meta; reads it as "" for a string meta', () => {
    expect(errorOf(() => readDefinition('<smil><head><meta name="lookaheadChunks"/></head></smil>')).code).toBe('ERR_BAD_DEFINITION');
    expect(errorOf(() => readDefinition('<smil><head><meta name="startOnFirstRequest"/></head></smil>')).code).toBe('ERR_BAD_DEFINITION');
    expect(readDefinition('<smil><head><meta name="title"/></head></smil>').overrides).toEqual({ title: '' });
  });

  it.each([
    ['unclosed elements', '<smil><head>'],
    ['mismatched tags', '<smil><head></body></smil>'],
    ['text that is not XML', 'lookaheadChunks=3'],
    ['an unquoted attribute', '<smil><head><meta name=title content="x"/></head></smil>'],
    ['a repeated attribute', '<smil><head><meta name="title" content="a" content="b"/></head></smil>'],
    ['another root element', '<html><head><meta name="title" content="x"/></head></html>'],
    ['two smil roots (the second would be ignored)', '<smil><head/></smil><smil><head><meta name="lookaheadChunks" content="5"/></head></smil>'],
    ['smil next to another root', '<smil/><html/>'],
    ['two heads', '<smil><head/><head><meta name="title" content="x"/></head></smil>'],
  ])('rejects %s with ERR_BAD_DEFINITION', (_name, text) => {
    expect(errorOf(() => readDefinition(text)).code).toBe('ERR_BAD_DEFINITION');
  });

  it('ignores unknown metas (names are case-sensitive), metas without a name, other head elements and metas in <body>', () => {
    const text = `<smil><head>
      <meta name="archivepath" content="not ours" />
      <meta name="m3u8-aapl-includecodecs" content="maybe" />
      <meta content="orphan" />
      <meta name="LookaheadChunks" content="not-a-number" />
      <link rel="x"/>
      <meta name="lookaheadChunks" content="7" />
    </head><body><meta name="title" content="in body" /></body></smil>`;
    expect(readDefinition(text).overrides).toEqual({ lookaheadChunks: 7 });
  });

  it('lets a later meta of the same name win', () => {
    expect(readDefinition(isml({}).replace('</head>', '<meta name="title" content="a"/><meta name="title" content="b"/></head>')).overrides.title).toBe('b');
  });

  it.each(['s', 'smil', 'x-1'])('reads metas under the namespace prefix %p', (ns) => {
    const { overrides } = readDefinition(isml({ title: 'Prefixed', lookaheadChunks: '1', startOnFirstRequest: 'True' }, ns));
    expect(overrides).toEqual({ title: 'Prefixed', lookaheadChunks: 1, startOnFirstRequest: true });
  });

  it('decodes entities and character references in values; single-quoted attributes work', () => {
    expect(readDefinition(isml({ title: 'A &amp; B &lt;live&gt; &quot;q&quot; &apos;a&apos;' })).overrides.title).toBe(`A & B <live> "q" 'a'`);
    expect(readDefinition(isml({ title: 'Caf&#233; &#x2603;' })).overrides.title).toBe('Café ☃');
    expect(readDefinition(`<smil><head><meta name='title' content='say "hi"'/></head></smil>`).overrides.title).toBe('say "hi"');
  });

  it('reads an empty title as an empty string', () => {
    expect(readDefinition(isml({ title: '' })).overrides).toEqual({ title: '' });
  });

  it('lists <ref src> of <body> as sources, in document order', () => {
    const text = `<smil><head/><body>
      <par><ref src="http://a/live/x.isml"/><ref src="http://b/live/x.isml"/></par>
      <switch><ref src="http://c/live/x.isml"/></switch>
      <!-- <ref src="http://commented/out.isml"/> -->
    </body></smil>`;
    expect(readDefinition(text).sources).toEqual(['http://a/live/x.isml', 'http://b/live/x.isml', 'http://c/live/x.isml']);
  });
});

describe('writeDefinition', () => {
  const texts: Array<[string, string]> = [
    ['the IIS sample (BOM, CRLF)', IIS_SAMPLE],
    ['a minimal file', isml({ title: 'x' })],
    ['a prefixed file', isml({ lookaheadChunks: '3' }, 's')],
    ['a file with an odd layout', `<smil><head><meta  content = 'x'  name='title'/><!-- c --></head>\n\n<body><par/></body></smil>`],
  ];

  it.each(texts)('writing no changes returns %s byte-identical', (_name, text) => {
    expect(writeDefinition(text, {})).toBe(text);
  });

  it('changing a value edits only that attribute', () => {
    const out = writeDefinition(IIS_SAMPLE, { lookaheadChunks: 5 });
    expect(changedLines(IIS_SAMPLE, out)).toEqual([
      ['    <meta name="lookaheadChunks" content="3" />\r', '    <meta name="lookaheadChunks" content="5" />\r'],
    ]);
    expect(readDefinition(out).overrides).toEqual({ ...IIS_SAMPLE_OVERRIDES, lookaheadChunks: 5 });
  });

  it('changing several values (typed or as text) edits each attribute in place', () => {
    const out = writeDefinition(IIS_SAMPLE, { title: 'News', startOnFirstRequest: 'false', manifestWindowLength: '600', publishing: 'fragments,streams,archives' });
    expect(changedLines(IIS_SAMPLE, out)).toEqual([
      ['    <meta name="title" content="Channel 1 &amp; friends" />\r', '    <meta name="title" content="News" />\r'],
      ['    <meta name="manifestWindowLength" content="120" />\r', '    <meta name="manifestWindowLength" content="600" />\r'],
      ['    <meta name="startOnFirstRequest" content="True" />\r', '    <meta name="startOnFirstRequest" content="False" />\r'],
    ]);
    // publishing was already the normalised value: its line is unchanged.
    expect(readDefinition(out).overrides).toMatchObject({ title: 'News', startOnFirstRequest: false, manifestWindowLength: 600 });
  });

  it('edits only the content attribute of an unusual meta element (attribute order, quotes, spacing kept)', () => {
    const text = `<smil><head><meta  content = 'x'  name='title' data-note="keep"/></head></smil>`;
    expect(writeDefinition(text, { title: 'y' })).toBe(`<smil><head><meta  content="y"  name='title' data-note="keep"/></head></smil>`);
  });

  it('adds a missing content attribute to an existing meta', () => {
    const text = isml({}).replace('</head>', '  <meta name="title" />\n  </head>');
    expect(writeDefinition(text, { title: 'T' })).toBe(isml({}).replace('</head>', '  <meta name="title" content="T" />\n  </head>'));
  });

  it('adds a meta before </head> with the indentation of the metas, keeping CRLF line endings', () => {
    const text = IIS_SAMPLE.replace('    <meta name="title" content="Channel 1 &amp; friends" />\r\n', '');
    const out = writeDefinition(text, { title: 'New' });
    expect(lineDelta(text, out)).toEqual({ removed: [], added: ['    <meta name="title" content="New" />\r'] });
    expect(out.indexOf('<meta name="title"')).toBeGreaterThan(out.indexOf('iss.minimum_fragment_length'));
    expect(out.indexOf('<meta name="title"')).toBeLessThan(out.indexOf('</head>'));
    expect(out.split('\r\n').join('')).not.toContain('\n'); // no bare LF
  });

  it('adds a meta to a head with no metas, one step deeper than </head>; tabs are kept as tabs', () => {
    const text = '<smil>\n\t<head>\n\t</head>\n</smil>\n';
    expect(writeDefinition(text, { lookaheadChunks: 4 })).toBe('<smil>\n\t<head>\n\t  <meta name="lookaheadChunks" content="4" />\n\t</head>\n</smil>\n');
    const tabbed = '<smil>\n\t<head>\n\t\t<meta name="title" content="x" />\n\t</head>\n</smil>\n';
    expect(writeDefinition(tabbed, { lookaheadChunks: 4 })).toBe(
      '<smil>\n\t<head>\n\t\t<meta name="title" content="x" />\n\t\t<meta name="lookaheadChunks" content="4" />\n\t</head>\n</smil>\n',
    );
  });

  it('adds a meta inline when </head> is not on its own line', () => {
    expect(writeDefinition('<smil><head><meta name="title" content="x"/></head></smil>', { lookaheadChunks: 1 })).toBe(
      '<smil><head><meta name="title" content="x"/><meta name="lookaheadChunks" content="1" /></head></smil>',
    );
  });

  it('adds a meta with the namespace prefix of the file', () => {
    const text = isml({ title: 'x' }, 's');
    const out = writeDefinition(text, { lookaheadChunks: 6 });
    expect(lineDelta(text, out)).toEqual({ removed: [], added: ['    <s:meta name="lookaheadChunks" content="6" />'] });
    expect(readDefinition(out).overrides).toEqual({ title: 'x', lookaheadChunks: 6 });
  });

  it.each([
    ['a self-closing <head/>', '<smil>\n  <head />\n  <body />\n</smil>\n', '<smil>\n  <head>\n    <meta name="title" content="T" />\n  </head>\n  <body />\n</smil>\n'],
    ['an inline <head/>', '<smil><head/></smil>', '<smil><head><meta name="title" content="T" /></head></smil>'],
    ['no <head>', '<smil>\n  <body />\n</smil>\n', '<smil>\n  <head>\n    <meta name="title" content="T" />\n  </head>\n  <body />\n</smil>\n'],
    [
      'a self-closing <smil/>',
      '<smil xmlns="http://www.w3.org/2001/SMIL20/Language"/>\n',
      '<smil xmlns="http://www.w3.org/2001/SMIL20/Language">\n  <head>\n    <meta name="title" content="T" />\n  </head>\n</smil>\n',
    ],
  ])('adds a meta to %s', (_name, text, expected) => {
    const out = writeDefinition(text, { title: 'T' });
    expect(out).toBe(expected);
    expect(readDefinition(out).overrides).toEqual({ title: 'T' });
  });

  it('null removes the meta (its whole line), so the setting inherits again', () => {
    const out = writeDefinition(IIS_SAMPLE, { manifestWindowLength: null });
    expect(lineDelta(IIS_SAMPLE, out)).toEqual({ removed: ['    <meta name="manifestWindowLength" content="120" />\r'], added: [] });
    const { overrides } = readDefinition(out);
    expect(overrides.manifestWindowLength).toBeUndefined();
    // It now comes from the layers below: a mapping's value, else the IIS default.
    expect(resolveSettings([{ manifestWindowLength: 7200 }, overrides]).manifestWindowLength).toBe(7200);
    expect(resolveSettings([overrides]).manifestWindowLength).toBe(IIS_DEFAULTS.manifestWindowLength);
  });

  it('null on a meta the file does not set changes nothing; removing an inline meta keeps its neighbours', () => {
    expect(writeDefinition(IIS_SAMPLE, { 'm3u8-aapl-enableencryption': null, formats: null })).toBe(
      IIS_SAMPLE.replace('    <meta name="formats" content="m3u8-aapl" />\r\n', '').replace('    <meta name="m3u8-aapl-enableencryption" content="false" />\r\n', ''),
    );
    expect(writeDefinition(IIS_SAMPLE.replace('    <meta name="formats" content="m3u8-aapl" />\r\n', ''), { formats: null })).toBe(
      IIS_SAMPLE.replace('    <meta name="formats" content="m3u8-aapl" />\r\n', ''),
    );
    expect(writeDefinition('<smil><head><meta name="a" content="1"/><meta name="title" content="x"></meta><meta name="b" content="2"/></head></smil>', { title: null })).toBe(
      '<smil><head><meta name="a" content="1"/><meta name="b" content="2"/></head></smil>',
    );
  });

  it('keeps unknown metas, comments (even a commented-out meta of the same name), the <body> and the layout byte for byte', () => {
    const text = [
      '<?xml version="1.0" encoding="utf-8"?>',
      '<!-- managed by hand -->',
      '<smil xmlns="http://www.w3.org/2001/SMIL20/Language">',
      '  <head>',
      '    <!-- <meta name="lookaheadChunks" content="9" /> -->',
      '    <meta name="custom.tool" content="a&amp;b" />',
      '    <meta name="title" content="Old" />',
      '    <meta name="restart_on_encoder_reconnect" content="true" />',
      '  </head>',
      '  <body>',
      '    <par>',
      '      <ref src="http://up/live/ch1.isml" />',
      '    </par>',
      '  </body>',
      '</smil>',
      '',
    ].join('\n');
    const out = writeDefinition(text, { title: null, lookaheadChunks: 4, startOnFirstRequest: true });
    expect(out).toBe(
      [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<!-- managed by hand -->',
        '<smil xmlns="http://www.w3.org/2001/SMIL20/Language">',
        '  <head>',
        '    <!-- <meta name="lookaheadChunks" content="9" /> -->',
        '    <meta name="custom.tool" content="a&amp;b" />',
        '    <meta name="restart_on_encoder_reconnect" content="true" />',
        '    <meta name="lookaheadChunks" content="4" />',
        '    <meta name="startOnFirstRequest" content="True" />',
        '  </head>',
        '  <body>',
        '    <par>',
        '      <ref src="http://up/live/ch1.isml" />',
        '    </par>',
        '  </body>',
        '</smil>',
        '',
      ].join('\n'),
    );
    expect(readDefinition(out)).toEqual({ overrides: { lookaheadChunks: 4, startOnFirstRequest: true }, sources: ['http://up/live/ch1.isml'] });
  });

  it('changes or removes every copy of a repeated meta (the last one is the one read)', () => {
    const text = '<smil><head>\n  <meta name="title" content="a" />\n  <meta name="title" content="b" />\n</head></smil>';
    const changed = writeDefinition(text, { title: 'c' });
    expect(changed).toBe('<smil><head>\n  <meta name="title" content="c" />\n  <meta name="title" content="c" />\n</head></smil>');
    expect(readDefinition(changed).overrides.title).toBe('c');
    expect(writeDefinition(text, { title: null })).toBe('<smil><head>\n</head></smil>');
  });

  it("edits a meta whose current value holds an apostrophe or a '>'", () => {
    expect(writeDefinition(`<smil><head><meta name="title" content="Joe's" /></head></smil>`, { title: 'Ann' })).toBe(
      `<smil><head><meta name="title" content="Ann" /></head></smil>`,
    );
    expect(writeDefinition(`<smil><head><meta name="title" content="a > b" /></head></smil>`, { title: 'c' })).toBe(
      `<smil><head><meta name="title" content="c" /></head></smil>`,
    );
  });

  it('writing to an empty file gives a definition IIS would read', () => {
    const out = writeDefinition('', { title: 'Channel 2', lookaheadChunks: 3, startOnFirstRequest: true, restartOnEncoderReconnect: true });
    expect(out.startsWith('<?xml version="1.0" encoding="utf-8"?>\n')).toBe(true);
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', isArray: (n) => n === 'meta' }).parse(out) as {
      smil: { '@xmlns': string; head: { meta: Array<Record<string, string>> }; body: unknown };
    };
    expect(doc.smil['@xmlns']).toBe('http://www.w3.org/2001/SMIL20/Language');
    expect(doc.smil.head.meta.map((m) => [m['@name'], m['@content']])).toEqual([
      ['module', 'liveSmoothStreaming'],
      ['title', 'Channel 2'],
      ['lookaheadChunks', '3'],
      ['startOnFirstRequest', 'True'],
      ['restartOnEncoderReconnect', 'True'],
    ]);
    expect('body' in doc.smil).toBe(true);
    expect(out).toMatch(/<body\s*\/>/);
    // Every meta is a <meta name="…" content="…" /> element on its own line, as IIS writes them.
    for (const line of out.split('\n').filter((l) => l.includes('<meta'))) expect(line).toMatch(/^ {4}<meta name="[^"]+" content="[^"]*" \/>$/);
    expect(readDefinition(out).overrides).toEqual({ module: 'liveSmoothStreaming', title: 'Channel 2', lookaheadChunks: 3, startOnFirstRequest: true, restartOnEncoderReconnect: true });
    expect(writeDefinition('', {})).toBe(writeDefinition('  \n', {}));
    expect(readDefinition(writeDefinition('', {})).overrides).toEqual({ module: 'liveSmoothStreaming' });
  });

  it.each([
    [true, 'True'],
    [false, 'False'],
    ['true', 'True'],
    ['FALSE', 'False'],
  ])('writes the boolean %p as %p', (value, written) => {
    const out = writeDefinition(isml({}), { startOnFirstRequest: value, 'm3u8-aapl-allowcaching': value });
    expect(out).toContain(`<meta name="startOnFirstRequest" content="${written}" />`);
    expect(out).toContain(`<meta name="m3u8-aapl-allowcaching" content="${written}" />`);
  });

  it('writes numbers in decimal and publishing normalised with ";"', () => {
    const out = writeDefinition(isml({}), { estimatedTime: 36000, publishing: 'fragments, archives' });
    expect(out).toContain('<meta name="estimatedTime" content="36000" />');
    expect(out).toContain('<meta name="publishing" content="Fragments;Archives" />');
  });

  it('escapes a title with quotes, ampersands and markup, and reads it back unchanged', () => {
    const title = `He said "hi" & <b>'bye'</b>`;
    const out = writeDefinition(isml({}), { title });
    expect(out).toContain('content="He said &quot;hi&quot; &amp; &lt;b&gt;&apos;bye&apos;&lt;/b&gt;"');
    expect(out).not.toContain('<b>');
    expect(readDefinition(out).overrides.title).toBe(title);
    // And again over the escaped value (editing in place).
    const again = writeDefinition(out, { title: `${title} 2` });
    expect(readDefinition(again).overrides.title).toBe(`${title} 2`);
  });

  it('round-trips every meta of the IIS sample through an empty file', () => {
    const out = writeDefinition('', IIS_SAMPLE_OVERRIDES);
    expect(readDefinition(out).overrides).toEqual(IIS_SAMPLE_OVERRIDES);
    expect(writeDefinition(out, IIS_SAMPLE_OVERRIDES)).toBe(out);
  });

  it.each([
    ['an unknown meta name', { 'not-a-meta': 'x' }],
    ['a name that differs only in case', { LookaheadChunks: 2 }],
    ['a negative number', { lookaheadChunks: -1 }],
    ['lookahead above the maximum', { lookaheadChunks: MAX_LOOKAHEAD + 1 }],
    ['a fraction', { manifestWindowLength: 1.5 }],
    ['a boolean as a number', { startOnFirstRequest: 1 }],
    ['an object', { title: { a: 1 } }],
    ['an unknown publishing target', { publishing: 'Fragments;Video' }],
  ])('rejects %s with ERR_BAD_DEFINITION', (_name, changes) => {
    expect(errorOf(() => writeDefinition(IIS_SAMPLE, changes)).code).toBe('ERR_BAD_DEFINITION');
  });

  it('refuses to edit a file that is not well-formed <smil>', () => {
    for (const text of ['<smil><head>', '<html><head/></html>', '<smil><head/><head/></smil>', 'lookaheadChunks=2']) {
      expect(errorOf(() => writeDefinition(text, { title: 'x' })).code).toBe('ERR_BAD_DEFINITION');
    }
  });

  it('repairs an invalid value (the point in Error is fixed through the API), but not around it', () => {
    const broken = isml({ title: 'x', lookaheadChunks: 'many' });
    expect(writeDefinition(broken, { lookaheadChunks: 4 })).toBe(isml({ title: 'x', lookaheadChunks: '4' }));
    expect(writeDefinition(broken, { lookaheadChunks: null })).toBe(isml({ title: 'x' }));
    const err = errorOf(() => writeDefinition(broken, { title: 'y' }));
    expect(err.code).toBe('ERR_BAD_DEFINITION');
    expect(err.message).toContain('lookaheadChunks');
  });
});

describe('resolveSettings', () => {
  it('with no layers gives the IIS defaults', () => {
    expect(resolveSettings([])).toEqual(IIS_DEFAULTS);
    expect(IIS_DEFAULTS).toMatchObject({ startOnFirstRequest: false, restartOnEncoderReconnect: false, lookaheadChunks: 2, manifestWindowLength: 0, sourceType: 'Push' });
  });

  it('later layers win; an undefined value in a layer does not override', () => {
    const s = resolveSettings([{ lookaheadChunks: 1, title: 'site' }, { lookaheadChunks: 4 }, { title: undefined, manifestWindowLength: 30 }]);
    expect(s).toEqual({ ...IIS_DEFAULTS, lookaheadChunks: 4, title: 'site', manifestWindowLength: 30 });
  });

  it('does not modify its layers or the defaults', () => {
    const layer = { lookaheadChunks: 9 };
    const s = resolveSettings([layer]);
    s.lookaheadChunks = 1;
    expect(layer).toEqual({ lookaheadChunks: 9 });
    expect(IIS_DEFAULTS.lookaheadChunks).toBe(2);
  });

  it('accepts the combinations IIS allows', () => {
    expect(resolveSettings([{ startOnFirstRequest: true, restartOnEncoderReconnect: true }]).restartOnEncoderReconnect).toBe(true);
    expect(resolveSettings([{ publishing: 'Fragments;Archives', archiveSegmentLength: 60 }]).archiveSegmentLength).toBe(60);
    expect(resolveSettings([readDefinition(IIS_SAMPLE).overrides])).toEqual({ ...IIS_DEFAULTS, ...IIS_SAMPLE_OVERRIDES });
  });

  it.each<[string, SettingsOverrides[], RegExp]>([
    ['restartOnEncoderReconnect without startOnFirstRequest', [{ restartOnEncoderReconnect: true }], /restartOnEncoderReconnect.*startOnFirstRequest/],
    ['restartOnEncoderReconnect with startOnFirstRequest turned off by a later layer', [{ startOnFirstRequest: true, restartOnEncoderReconnect: true }, { startOnFirstRequest: false }], /startOnFirstRequest/],
    ['archiveSegmentLength > 0 without Archives', [{ archiveSegmentLength: 60 }], /archiveSegmentLength.*Archives/],
    ['archiveSegmentLength > 0 when a later layer drops Archives', [{ publishing: 'Fragments;Archives', archiveSegmentLength: 60 }, { publishing: 'Fragments' }], /Archives/],
    ['sourceType Pull without sources', [{ sourceType: 'Pull' }], /Pull/],
  ])('rejects %s with ERR_BAD_DEFINITION', (_name, layers, message) => {
    const err = errorOf(() => resolveSettings(layers));
    expect(err.code).toBe('ERR_BAD_DEFINITION');
    expect(err.message).toMatch(message);
  });

  it('accepts sourceType Pull with upstream publishing points; a Push point ignores its <ref>s, whatever they are', () => {
    expect(resolveSettings([{ sourceType: 'Pull' }], ['http://up/live/ch1.isml', 'https://twin:8443/live/ch1.isml']).sourceType).toBe('Pull');
    // IIS lists push targets in the same <body>: nothing about them is checked for a Push point.
    expect(resolveSettings([{ sourceType: 'Push' }], ['ftp://user:pw@x/y?z', 'not a url']).sourceType).toBe('Push');
    expect(resolveSettings([], Array.from({ length: 20 }, (_, i) => `http://h${i}/x.isml`)).sourceType).toBe('Push');
  });

  it('checks the sources of the resolved setting: a later layer that makes the point Pull needs them', () => {
    const err = errorOf(() => resolveSettings([{ sourceType: 'Push' }, { sourceType: 'Pull' }], []));
    expect(err.code).toBe('ERR_BAD_DEFINITION');
    expect(resolveSettings([{ sourceType: 'Pull' }, { sourceType: 'Push' }], []).sourceType).toBe('Push');
  });

  it('reads sourceType Pull and its sources from a definition', () => {
    const text = isml({ sourceType: 'Pull', startOnFirstRequest: 'true' }).replace('<body />', '<body><switch><ref src="http://up/live/ch1.isml/"/></switch></body>');
    const def = readDefinition(text);
    expect(resolveSettings([def.overrides], def.sources)).toMatchObject({ sourceType: 'Pull', startOnFirstRequest: true });
    expect(pullSources(def.sources)).toEqual(['http://up/live/ch1.isml']);
  });
});

describe('pullSources', () => {
  it('keeps http(s) URLs of live publishing points in order, normalised, a trailing slash dropped', () => {
    expect(
      pullSources([
        'http://origin1/live/ch1.isml',
        'https://origin2:8443/live/ch1.isml/',
        'HTTP://Origin3:80/a/../live/CH1.ISML',
        'http://[::1]:8080/ch1.isml',
      ]),
    ).toEqual(['http://origin1/live/ch1.isml', 'https://origin2:8443/live/ch1.isml', 'http://origin3/live/CH1.ISML', 'http://[::1]:8080/ch1.isml']);
  });

  it('takes up to 8 sources', () => {
    const eight = Array.from({ length: 8 }, (_, i) => `http://origin${i}/live/ch1.isml`);
    expect(pullSources(eight)).toHaveLength(8);
    const err = errorOf(() => pullSources([...eight, 'http://origin8/live/ch1.isml']));
    expect(err.code).toBe('ERR_BAD_DEFINITION');
    expect(err.message).toMatch(/more than 8 sources/);
  });

  it.each<[string, string[], RegExp]>([
    ['no source', [], /lists no source in <body> \(<ref src=/],
    ['text that is not a URL', ['origin1/live/ch1.isml'], /pull source "origin1\/live\/ch1.isml" is not a URL/],
    ['an empty src', [''], /pull source "" is not a URL/],
    ['ftp:', ['ftp://origin1/live/ch1.isml'], /must be an http\(s\) URL/],
    ['file:', ['file:///srv/live/ch1.isml'], /must be an http\(s\) URL/],
    ['credentials', ['http://user:secret@origin1/live/ch1.isml'], /without credentials/],
    ['a user name alone', ['http://user@origin1/live/ch1.isml'], /without credentials/],
    ['a query', ['http://origin1/live/ch1.isml?token=1'], /without credentials, query/],
    ['an empty query', ['http://origin1/live/ch1.isml?'], /without credentials, query/],
    ['a fragment', ['http://origin1/live/ch1.isml#x'], /query or fragment/],
    ['an empty fragment', ['http://origin1/live/ch1.isml/#'], /query or fragment/],
    ['a path not ending in .isml', ['http://origin1/live/ch1.ism'], /…\/name\.isml/],
    ['a resource below the point', ['http://origin1/live/ch1.isml/Manifest'], /…\/name\.isml/],
    ['the origin alone', ['http://origin1'], /…\/name\.isml/],
    ['a URL over 2048 characters', [`http://origin1/${'a'.repeat(2048)}.isml`], /must be an http\(s\) URL/],
  ])('refuses %s with ERR_BAD_DEFINITION', (_name, sources, message) => {
    const err = errorOf(() => pullSources(sources));
    expect(err.code).toBe('ERR_BAD_DEFINITION');
    expect(err.message).toMatch(message);
    // resolveSettings refuses a Pull point the same way.
    expect(errorOf(() => resolveSettings([{ sourceType: 'Pull' }], sources)).message).toBe(err.message);
  });

  it('names one bad source among good ones (shortened to 80 characters)', () => {
    const long = `ftp://origin1/${'x'.repeat(200)}.isml`;
    const err = errorOf(() => pullSources(['http://origin1/live/ch1.isml', long]));
    expect(err.message).toContain(`"${long.slice(0, 80)}"`);
    expect(err.message).not.toContain(long.slice(0, 81));
  });
});
