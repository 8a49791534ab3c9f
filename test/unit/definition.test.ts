import { MAX_LOOKAHEAD, PointSettings, readDefinition } from '../../lib/definition';
import { SmoothError } from '../../lib/errors';

const DEFAULTS: PointSettings = Object.freeze({
  title: undefined,
  lookaheadChunks: 2,
  manifestWindowLength: 0,
  estimatedTime: 0,
  startOnFirstRequest: false,
  restartOnEncoderReconnect: false,
});

function isml(metas: Record<string, string>, ns = ''): string {
  const p = ns ? `${ns}:` : '';
  const xmlns = ns ? `xmlns:${ns}` : 'xmlns';
  const head = Object.entries(metas)
    .map(([name, content]) => `    <${p}meta name="${name}" content="${content}" />\n`)
    .join('');
  return `<?xml version="1.0" encoding="utf-8"?>\n<${p}smil ${xmlns}="http://www.w3.org/2001/SMIL20/Language">\n  <${p}head>\n${head}  </${p}head>\n  <${p}body />\n</${p}smil>\n`;
}

function code(text: string): string | undefined {
  try {
    readDefinition(text, DEFAULTS);
  } catch (err) {
    expect(err).toBeInstanceOf(SmoothError);
    return (err as SmoothError).code;
  }
  return undefined;
}

describe('readDefinition', () => {
  it('reads an IIS-style .isml with every meta of the protocol notes (§5.1)', () => {
    const text = `<?xml version="1.0" encoding="utf-8"?>
<smil xmlns="http://www.w3.org/2001/SMIL20/Language">
  <head>
    <meta name="title" content="Channel 1" />
    <meta name="module" content="liveSmoothStreaming" />
    <meta name="sourceType" content="Push" />
    <meta name="publishing" content="Fragments;Streams;Archives" />
    <meta name="estimatedTime" content="36000" />
    <meta name="lookaheadChunks" content="3" />
    <meta name="manifestWindowLength" content="120" />
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
    expect(readDefinition(text, DEFAULTS)).toEqual({
      title: 'Channel 1',
      lookaheadChunks: 3,
      manifestWindowLength: 120,
      estimatedTime: 36000,
      startOnFirstRequest: false,
      restartOnEncoderReconnect: true,
    });
  });

  it('does not modify the defaults object', () => {
    const defaults = { ...DEFAULTS };
    readDefinition(isml({ lookaheadChunks: '5' }), defaults);
    expect(defaults).toEqual(DEFAULTS);
  });

  it.each([
    ['an empty file', ''],
    ['whitespace', ' \n\t\n'],
    ['a BOM only', '\uFEFF'],
    ['a smil without head', '<smil xmlns="http://www.w3.org/2001/SMIL20/Language"><body/></smil>'],
    ['an empty head', '<smil><head></head><body/></smil>'],
    ['a self-closing head', '<smil><head/></smil>'],
    ['an empty smil element', '<smil></smil>'],
    ['a self-closing smil element', '<smil/>'],
    ['a self-closing smil element with its namespace', '<smil xmlns="http://www.w3.org/2001/SMIL20/Language"/>'],
    ['a declaration, a comment and a doctype', '<?xml version="1.0"?>\n<!-- point -->\n<!DOCTYPE smil>\n<smil><head/></smil>'],
  ])('returns the defaults for %s', (_name, text) => {
    expect(readDefinition(text, DEFAULTS)).toEqual(DEFAULTS);
  });

  it('reads a file that starts with a BOM', () => {
    expect(readDefinition('\uFEFF' + isml({ lookaheadChunks: '4' }), DEFAULTS).lookaheadChunks).toBe(4);
  });

  it('overrides the given defaults only where the file sets a meta', () => {
    const defaults = { ...DEFAULTS, lookaheadChunks: 5, startOnFirstRequest: true };
    expect(readDefinition(isml({ manifestWindowLength: '60' }), defaults)).toEqual({ ...defaults, manifestWindowLength: 60 });
  });

  it.each([
    ['true', true],
    ['True', true],
    ['TRUE', true],
    [' tRuE ', true],
    ['false', false],
    ['False', false],
    ['FALSE', false],
  ])('reads the boolean %p case-insensitively', (content, value) => {
    const s = readDefinition(isml({ startOnFirstRequest: content, restartOnEncoderReconnect: content }), { ...DEFAULTS, startOnFirstRequest: !value });
    expect(s.startOnFirstRequest).toBe(value);
    expect(s.restartOnEncoderReconnect).toBe(value);
  });

  it.each(['yes', '1', '0', '', 'truee', 'on'])('rejects the boolean %p', (content) => {
    expect(code(isml({ startOnFirstRequest: content }))).toBe('ERR_BAD_DEFINITION');
    expect(code(isml({ restartOnEncoderReconnect: content }))).toBe('ERR_BAD_DEFINITION');
  });

  it('accepts whole numbers with surrounding spaces and the largest values', () => {
    expect(readDefinition(isml({ lookaheadChunks: ' 0 ', manifestWindowLength: '4294967295', estimatedTime: '4294967295' }), DEFAULTS)).toMatchObject({
      lookaheadChunks: 0,
      manifestWindowLength: 4294967295,
      estimatedTime: 4294967295,
    });
    expect(readDefinition(isml({ lookaheadChunks: String(MAX_LOOKAHEAD) }), DEFAULTS).lookaheadChunks).toBe(MAX_LOOKAHEAD);
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
    ['estimatedTime', 'NaN'],
    ['estimatedTime', 'Infinity'],
  ])('rejects %s=%p, naming the meta', (name, content) => {
    expect(() => readDefinition(isml({ [name]: content }), DEFAULTS)).toThrow(
      expect.objectContaining({ code: 'ERR_BAD_DEFINITION', message: expect.stringContaining(name) }),
    );
  });

  it('rejects a missing content attribute on a numeric meta', () => {
    expect(code('<smil><head><meta name="lookaheadChunks"/></head></smil>')).toBe('ERR_BAD_DEFINITION');
  });

  it.each([
    ['unclosed elements', '<smil><head>'],
    ['mismatched tags', '<smil><head></body></smil>'],
    ['text that is not XML', 'lookaheadChunks=3'],
    ['an unquoted attribute', '<smil><head><meta name=title content="x"/></head></smil>'],
  ])('rejects %s', (_name, text) => {
    expect(code(text)).toBe('ERR_BAD_DEFINITION');
  });

  it.each([
    ['another root element', '<html><head><meta name="title" content="x"/></head></html>'],
    ['two smil roots (the second would be ignored)', '<smil><head/></smil><smil><head><meta name="lookaheadChunks" content="5"/></head></smil>'],
    ['smil next to another root', '<smil/><html/>'],
  ])('rejects %s', (_name, text) => {
    expect(code(text)).toBe('ERR_BAD_DEFINITION');
  });

  it('ignores unknown metas, metas without a name and other head elements', () => {
    const text = `<smil><head>
      <meta name="archivePath" content="D:\\archives" />
      <meta name="m3u8-aapl-enableencryption" content="maybe" />
      <meta content="orphan" />
      <meta name="LookaheadChunks" content="not-a-number" />
      <link rel="x"/>
      <meta name="lookaheadChunks" content="7" />
    </head></smil>`;
    expect(readDefinition(text, DEFAULTS)).toEqual({ ...DEFAULTS, lookaheadChunks: 7 });
  });

  it('lets a later meta of the same name win', () => {
    expect(readDefinition(isml({}).replace('</head>', '<meta name="title" content="a"/><meta name="title" content="b"/></head>'), DEFAULTS).title).toBe('b');
  });

  it('reads metas under a namespace prefix', () => {
    const s = readDefinition(isml({ title: 'Prefixed', lookaheadChunks: '1', startOnFirstRequest: 'True' }, 's'), DEFAULTS);
    expect(s).toMatchObject({ title: 'Prefixed', lookaheadChunks: 1, startOnFirstRequest: true });
  });

  it('decodes entities in the title', () => {
    expect(readDefinition(isml({ title: 'A &amp; B &lt;live&gt;' }), DEFAULTS).title).toBe('A & B <live>');
  });

  it('reads an empty title as an empty string', () => {
    expect(readDefinition(isml({ title: '' }), DEFAULTS).title).toBe('');
  });
});
